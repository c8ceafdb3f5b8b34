//! How many threads this process may use, and why: the smallest of the online cores,
//! the CPU affinity mask (`taskset`, a cpuset, Slurm's `--cpus-per-task`), the cgroup's
//! CPU quota, the limits set from outside (`OPENBLAS_NUM_THREADS`, `OMP_NUM_THREADS`,
//! `RAYON_NUM_THREADS`, which joblib's loky workers set; OpenBLAS's own thread count as
//! threadpoolctl leaves it; nabla's own limit), or an explicit request (`--threads`,
//! which the command line caps at the hardware limits).

use std::fmt;

use crate::cgroup::{Cgroups, CpuQuota};

/// What decided a thread count.
#[derive(Clone, Debug, PartialEq)]
pub enum ThreadSource {
    /// Every online core.
    Cores {
        /// Cores online.
        online: usize,
    },
    /// The CPU affinity mask allows fewer CPUs than are online.
    Affinity {
        /// CPUs allowed.
        allowed: usize,
        /// Cores online.
        online: usize,
    },
    /// The cgroup's CPU quota, rounded up to whole threads.
    CpuQuota(CpuQuota),
    /// An address-space limit (`ulimit -v`) with room for this many threads' OpenBLAS
    /// buffers (see [`crate::limits::THREAD_ADDRESS_SPACE`]).
    AddressSpace(usize),
    /// An environment variable.
    Environment {
        /// Its name.
        name: &'static str,
        /// Its value.
        value: usize,
    },
    /// OpenBLAS's thread count, as something else in this process set it (threadpoolctl's
    /// `threadpool_limits`, for example).
    OpenBlasSetting(usize),
    /// nabla's own limit ([`super::set_limit`], threadpoolctl's `nabla` entry).
    Limit(usize),
    /// Asked for by the caller ([`super::set_threads`]).
    Requested(usize),
}

impl fmt::Display for ThreadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cores { online: 1 } => f.write_str("the one core"),
            Self::Cores { online } => write!(f, "all {online} cores"),
            Self::Affinity { allowed, online } => {
                write!(f, "CPU affinity: {allowed} of {online} cores")
            }
            Self::CpuQuota(quota) => write!(f, "cgroup CPU quota: {:.2} cores", quota.cores()),
            Self::AddressSpace(threads) => {
                write!(f, "address-space limit (ulimit -v): room for {threads}")
            }
            Self::Environment { name, value } => write!(f, "{name}={value}"),
            Self::OpenBlasSetting(threads) => {
                write!(f, "OpenBLAS limited to {threads} in this process")
            }
            Self::Limit(threads) => write!(f, "nabla's thread limit: {threads}"),
            Self::Requested(threads) => write!(f, "{threads} requested"),
        }
    }
}

/// A thread count and what decided it.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadBudget {
    /// Threads to use (at least 1).
    pub threads: usize,
    /// Why.
    pub source: ThreadSource,
}

impl fmt::Display for ThreadBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.threads == 1 { "" } else { "s" };
        write!(f, "{} thread{plural} ({})", self.threads, self.source)
    }
}

/// What limits the threads, as read from the system and the environment (the inputs of
/// [`ThreadBudget::decide`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    /// Cores online.
    pub online: usize,
    /// CPUs in the affinity mask, if it can be read.
    pub affinity: Option<usize>,
    /// The cgroup's CPU quota, if any.
    pub quota: Option<CpuQuota>,
    /// The threads an address-space limit leaves room for, if there is one.
    pub address_space: Option<usize>,
    /// Thread-count variables set in the environment, with their values.
    pub environment: Vec<(&'static str, usize)>,
    /// OpenBLAS's thread count as set from outside nabla, if below the cores.
    pub openblas: Option<usize>,
    /// nabla's own limit, if set.
    pub limit: Option<usize>,
}

/// The variables OpenBLAS reads for its thread count, in its order (the first one set
/// wins), and rayon's.
const OPENBLAS_VARIABLES: [&str; 3] = [
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OMP_NUM_THREADS",
];
const RAYON_VARIABLE: &str = "RAYON_NUM_THREADS";

impl Limits {
    /// The hardware limits of this process now (cores, affinity, cgroup quota) and the
    /// environment's; `openblas` and `limit` are left for the caller.
    pub fn read() -> Self {
        Self {
            online: online_cores(),
            affinity: affinity_cpus(),
            quota: Cgroups::system().cpu_quota(),
            address_space: crate::limits::address_space_threads(),
            environment: environment(|name| std::env::var(name).ok()),
            openblas: None,
            limit: None,
        }
    }

    /// The CPUs the hardware side allows: cores, affinity, quota and the address space
    /// (at least 1).
    pub fn hardware(&self) -> ThreadBudget {
        let online = self.online.max(1);
        let mut budget = ThreadBudget {
            threads: online,
            source: ThreadSource::Cores { online },
        };
        if let Some(allowed) = self.affinity.filter(|&allowed| allowed >= 1) {
            if allowed < budget.threads {
                budget = ThreadBudget {
                    threads: allowed,
                    source: ThreadSource::Affinity { allowed, online },
                };
            }
        }
        if let Some(quota) = self.quota {
            if quota.threads() < budget.threads {
                budget = ThreadBudget {
                    threads: quota.threads(),
                    source: ThreadSource::CpuQuota(quota),
                };
            }
        }
        if let Some(threads) = self.address_space.filter(|&t| t < budget.threads) {
            budget = ThreadBudget {
                threads,
                source: ThreadSource::AddressSpace(threads),
            };
        }
        budget
    }
}

impl ThreadBudget {
    /// The threads to use under `limits`: `requested` if given (a caller that asks for
    /// more than the hardware allows gets it: the command line warns and caps first),
    /// otherwise the smallest of every limit. On a tie the more specific
    /// source is named (nabla's limit, then the environment, then OpenBLAS's setting,
    /// then the hardware).
    pub fn decide(limits: &Limits, requested: Option<usize>) -> Self {
        let hardware = limits.hardware();
        if let Some(requested) = requested {
            return Self {
                threads: requested.max(1),
                source: ThreadSource::Requested(requested.max(1)),
            };
        }
        let soft = limits
            .limit
            .map(|threads| (threads, ThreadSource::Limit(threads)))
            .into_iter()
            .chain(
                limits
                    .environment
                    .iter()
                    .map(|&(name, value)| (value, ThreadSource::Environment { name, value })),
            )
            .chain(
                limits
                    .openblas
                    .map(|threads| (threads, ThreadSource::OpenBlasSetting(threads))),
            );
        let mut budget = hardware;
        let mut soft_named = false;
        for (threads, source) in soft {
            let threads = threads.max(1);
            // On a tie a soft limit is named (it was set on purpose), unless the address
            // space decided (a soft limit then was likely set to fit it).
            let tie = threads == budget.threads
                && !soft_named
                && !matches!(budget.source, ThreadSource::AddressSpace(_));
            if threads < budget.threads || tie {
                budget = Self { threads, source };
                soft_named = true;
            }
        }
        budget
    }
}

/// Cores online (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
pub fn online_cores() -> usize {
    // SAFETY: sysconf only reads a system value.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1).max(1)
}

/// The CPUs this process may run on (its affinity mask), if it can be read.
pub fn affinity_cpus() -> Option<usize> {
    allowed_cpus().map(|cpus| cpus.len())
}

/// The ids of the CPUs in this process's affinity mask, if it can be read.
pub fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most
    // its size, and CPU_ISSET reads within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect();
        (!cpus.is_empty()).then_some(cpus)
    }
}

/// The thread-count variables set to a positive count, as `get` reads them: the first
/// of OpenBLAS's variables that is set (as OpenBLAS reads them, with C's `atoi`: `1.5`
/// is 1, `abc` is unset), and rayon's. A value like `OMP_NUM_THREADS=4,2` (nested
/// levels) counts its first level.
pub fn environment(get: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, usize)> {
    let count = |name: &'static str| {
        let value = get(name)?;
        let digits: String = value
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let first = digits.parse::<usize>().ok()?;
        (first > 0).then_some((name, first))
    };
    OPENBLAS_VARIABLES
        .into_iter()
        .find_map(count)
        .into_iter()
        .chain(count(RAYON_VARIABLE))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(online: usize) -> Limits {
        Limits {
            online,
            ..Limits::default()
        }
    }

    #[test]
    fn the_smallest_limit_wins_and_is_named() {
        let mut l = limits(8);
        assert_eq!(
            ThreadBudget::decide(&l, None).to_string(),
            "8 threads (all 8 cores)"
        );
        l.affinity = Some(4);
        assert_eq!(
            ThreadBudget::decide(&l, None).to_string(),
            "4 threads (CPU affinity: 4 of 8 cores)"
        );
        l.quota = Some(CpuQuota {
            quota: 250_000,
            period: 100_000,
        });
        assert_eq!(
            ThreadBudget::decide(&l, None).to_string(),
            "3 threads (cgroup CPU quota: 2.50 cores)"
        );
        l.openblas = Some(3);
        assert_eq!(
            ThreadBudget::decide(&l, None).source,
            ThreadSource::OpenBlasSetting(3),
            "a soft limit equal to the hardware's is named: it was set on purpose"
        );
        l.environment = vec![("OPENBLAS_NUM_THREADS", 2)];
        assert_eq!(
            ThreadBudget::decide(&l, None).to_string(),
            "2 threads (OPENBLAS_NUM_THREADS=2)"
        );
        l.limit = Some(1);
        assert_eq!(
            ThreadBudget::decide(&l, None).to_string(),
            "1 thread (nabla's thread limit: 1)"
        );
        // An explicit request overrides every limit.
        assert_eq!(
            ThreadBudget::decide(&l, Some(2)).source,
            ThreadSource::Requested(2)
        );
        assert_eq!(ThreadBudget::decide(&l, Some(7)).threads, 7);
    }

    #[test]
    fn environment_follows_openblas_order() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            environment(vars(&[
                ("OMP_NUM_THREADS", "4,2"),
                ("GOTO_NUM_THREADS", "3")
            ])),
            vec![("GOTO_NUM_THREADS", 3)]
        );
        assert_eq!(
            environment(vars(&[
                ("OPENBLAS_NUM_THREADS", "0"),
                ("OMP_NUM_THREADS", "2")
            ])),
            vec![("OMP_NUM_THREADS", 2)],
            "0 means unset to OpenBLAS"
        );
        assert_eq!(
            environment(vars(&[
                ("RAYON_NUM_THREADS", "1"),
                ("OMP_NUM_THREADS", "x")
            ])),
            vec![("RAYON_NUM_THREADS", 1)]
        );
        assert_eq!(
            environment(vars(&[("OPENBLAS_NUM_THREADS", "1.5")])),
            vec![("OPENBLAS_NUM_THREADS", 1)],
            "as OpenBLAS's atoi reads it"
        );
    }

    #[test]
    fn this_process_has_cores_and_an_affinity() {
        let limits = Limits::read();
        assert!(limits.online >= 1);
        let allowed = affinity_cpus().expect("Linux reports the affinity mask");
        assert!(allowed >= 1 && allowed <= limits.online.max(allowed));
    }
}
