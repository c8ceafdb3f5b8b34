//! `nabla sweep` owns its runs' processes and its folder (issue 19): runs die with the
//! sweep (`kill -9`, or a second SIGTERM), a first SIGTERM stops them promptly, a run
//! folder a live process holds is never removed, and one sweep folder has one writer.

use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use nabla::file_lock::FileLock;

use super::cli::nabla_subcommand;
use super::sweep_edges::run_folders;

/// Two runs far longer than the test (a million epochs each): they end only if stopped.
const LONG: [&str; 12] = [
    "--hidden",
    "16 24",
    "--activation",
    "relu",
    "--epochs",
    "1000000",
    "--jobs",
    "2",
    "--threads",
    "1",
    "--extra",
    "--train-rows 500 --test-rows 100",
];

/// Starts the long sweep into `out`.
fn start_long_sweep(out: &Path) -> Child {
    Process::new(assert_cmd::cargo::cargo_bin("nabla"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("sweep")
        .args(LONG)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The pids whose parent is `parent` (from /proc).
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat_of(pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// The state letter and the parent pid of `pid`, from /proc/PID/stat.
fn stat_of(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let mut fields = after.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` still runs (a zombie waiting for its reaper has ended).
fn alive(pid: u32) -> bool {
    stat_of(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// Waits until the sweep has two runs that have logged an epoch; their pids.
fn wait_for_two_runs(sweep: &Child, out: &Path) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let logged = std::fs::read_dir(out.join("runs"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().join("log.csv").is_file())
                    .count()
            })
            .unwrap_or(0);
        let runs = children_of(sweep.id());
        if logged == 2 && runs.len() == 2 {
            return runs;
        }
        assert!(Instant::now() < deadline, "the two runs did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most `seconds`) until none of `pids` runs.
fn all_ended(pids: &[u32], seconds: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while pids.iter().any(|&pid| alive(pid)) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The sweep's exit status, if it ends within `seconds` (else it is killed).
fn wait_at_most(sweep: &mut Child, seconds: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if let Some(status) = sweep.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = sweep.kill();
    let _ = sweep.wait();
    None
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a child this test started and has not reaped.
    assert_eq!(
        unsafe { libc::kill(i32::try_from(pid).unwrap(), signal) },
        0
    );
}

/// Ends whatever is left of a failed test's processes.
struct Reaper(Vec<u32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if alive(pid) {
                // SAFETY: kill(2) on a pid this test saw as a run of its own sweep.
                unsafe { libc::kill(i32::try_from(pid).unwrap(), libc::SIGKILL) };
            }
        }
    }
}

#[test]
fn a_sweep_killed_with_kill_9_takes_its_runs_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let mut sweep = start_long_sweep(&out);
    let runs = wait_for_two_runs(&sweep, &out);
    let _reaper = Reaper(runs.clone());
    // Only the sweep's own pid, not its process group.
    signal(sweep.id(), libc::SIGKILL);
    sweep.wait().unwrap();
    assert!(
        all_ended(&runs, 10),
        "runs {runs:?} outlived the sweep killed with kill -9"
    );
}

#[test]
fn a_first_sigterm_stops_the_runs_promptly_and_a_second_ends_them_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for twice in [false, true] {
        let out = dir.path().join(format!("sweep-{twice}"));
        let mut sweep = start_long_sweep(&out);
        let runs = wait_for_two_runs(&sweep, &out);
        let _reaper = Reaper(runs.clone());
        signal(sweep.id(), libc::SIGTERM);
        if twice {
            std::thread::sleep(Duration::from_millis(5));
            signal(sweep.id(), libc::SIGTERM);
        }
        let status = wait_at_most(&mut sweep, 30);
        assert!(
            all_ended(&runs, 10),
            "runs {runs:?} outlived the sweep (SIGTERM twice: {twice})"
        );
        let status = status.expect("the sweep waited for its runs' million epochs");
        assert_eq!(status.code(), Some(130), "twice: {twice}");
        if !twice {
            // Stopped, not killed: each run saved its checkpoint, to be resumed.
            let saved = std::fs::read_dir(out.join("runs"))
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.path().join("checkpoint.safetensors").is_file())
                .count();
            assert_eq!(saved, 2);
        }
    }
}

/// A two-point grid of quick runs.
const QUICK: [&str; 10] = [
    "--hidden",
    "16 24",
    "--activation",
    "relu",
    "--epochs",
    "2",
    "--threads",
    "1",
    "--extra",
    "--train-rows 300 --test-rows 50",
];

fn quick_sweep(out: &Path, extra: &[&str]) -> std::process::Output {
    nabla_subcommand("sweep")
        .args(QUICK)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_run_folder_held_by_a_live_process_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    assert!(quick_sweep(&out, &[]).status.success());
    let held = run_folders(&out)[0].clone();
    // This test process stands for a `nabla train` still writing in the folder.
    let lock = FileLock::acquire(&held.join(".lock")).unwrap();
    let output = quick_sweep(&out, &["--force"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())) && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(
        held.join("summary.json").is_file(),
        "the held folder was removed"
    );
    drop(lock);
    assert!(quick_sweep(&out, &["--force"]).status.success());
}

#[test]
fn a_second_sweep_into_a_busy_folder_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    // The plan, for --task-id; then this process holds the sweep folder.
    assert!(quick_sweep(&out, &["--list"]).status.success());
    let lock = FileLock::acquire(&out.join(".lock")).unwrap();
    let holder = format!("pid {}", std::process::id());
    for extra in [&[][..], &["--list"], &["--lr", "0.5"]] {
        let output = quick_sweep(&out, extra);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("nabla: error: ") && stderr.contains(&holder),
            "{stderr}"
        );
    }
    let collect = nabla_subcommand("sweep")
        .arg("--collect")
        .arg(&out)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&collect.stderr).contains(&holder));
    assert!(
        !out.join("results.md").exists(),
        "a refused sweep wrote results"
    );
    // A Slurm array task claims only its own run: it runs while the sweep is held.
    let task = nabla_subcommand("sweep")
        .args(["--task-id", "0", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        task.status.success(),
        "{}",
        String::from_utf8_lossy(&task.stderr)
    );
    assert_eq!(
        run_folders(&out)
            .iter()
            .filter(|f| f.join("summary.json").is_file())
            .count(),
        1
    );
    drop(lock);
}
