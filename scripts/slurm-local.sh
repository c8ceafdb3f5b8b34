#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for testing sweeps against the real thing.
#
#   scripts/slurm-local.sh up      # install (Debian: slurm-wlm, munge) if needed, start
#   scripts/slurm-local.sh down    # stop the daemons it started (by their pid files)
#   source <(scripts/slurm-local.sh env)   # SLURM_CONF for sbatch, squeue, ...
#
# Runs as root, without systemd: munged as the munge user, slurmctld and slurmd with a
# slurm.conf whose state, spool, logs and pid files live in $NABLA_SLURM_DIR
# (default /tmp/nabla-slurm). One node, $(hostname), with all its CPUs, in one default
# partition. Takes a few seconds; `down` leaves nothing running.
set -euo pipefail

dir=${NABLA_SLURM_DIR:-/tmp/nabla-slurm}
conf=$dir/slurm.conf
munge_pid=/run/munge/nabla-munged.pid

install() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge
    fi
}

up() {
    install
    mkdir -p "$dir"/{state,spool,log}
    # munge: a key, its run directory owned by munge, the daemon as munge.
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    # Its pid file goes in its own /run/munge: munged runs as munge, which may not be
    # able to reach $dir (a mktemp directory is private to root).
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if ! pgrep -x munged >/dev/null; then
        su -s /bin/sh munge -c "munged --pid-file=$munge_pid" ||
            runuser -u munge -- munged --pid-file="$munge_pid"
        echo started >"$dir/munged-started-by-us"
    fi
    local host cpus
    host=$(hostname)
    cpus=$(nproc)
    cat >"$conf" <<CONF
ClusterName=nabla-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$conf
    slurmctld -f "$conf"
    slurmd -f "$conf"
    # Ready when the node is idle.
    for _ in $(seq 100); do
        if sinfo -h -o %t 2>/dev/null | grep -q idle; then
            echo "slurm-local: up ($host, $cpus CPUs; SLURM_CONF=$conf)"
            return 0
        fi
        sleep 0.2
    done
    echo "slurm-local: the node did not become idle; see $dir/log" >&2
    sinfo >&2 || true
    return 1
}

down() {
    for daemon in slurmd slurmctld; do
        if [ -s "$dir/$daemon.pid" ]; then
            kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true
        fi
    done
    if [ -f "$dir/munged-started-by-us" ] && [ -s "$munge_pid" ]; then
        kill "$(cat "$munge_pid")" 2>/dev/null || true
        rm -f "$dir/munged-started-by-us"
    fi
    sleep 0.5
    echo "slurm-local: down"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    env) echo "export SLURM_CONF=$conf" ;;
    *) echo "usage: scripts/slurm-local.sh up|down|env" >&2; exit 2 ;;
esac
