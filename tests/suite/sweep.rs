//! `nabla sweep` (behind scripts/sweep.sh): runs that do not depend on how the sweep was
//! scheduled, a sweep that continues where it was killed, random search, `--list` and
//! `--collect`. (The Slurm array and GNU parallel are tested against the real programs by
//! scripts/test-sweeps.sh, which CI runs.)

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use super::cli::{column, nabla_subcommand, stdout_of};

/// A small grid: 2 widths x 2 activations x 2 learning rates, 3 epochs on 500 rows.
const GRID: [&str; 10] = [
    "--hidden",
    "16 32",
    "--activation",
    "relu sigmoid",
    "--lr",
    "0.1 0.02",
    "--epochs",
    "3",
    "--extra",
    "--train-rows 500 --test-rows 100",
];

/// Runs the grid into `out`; stdout and stderr.
fn sweep(out: &Path, extra: &[&str]) -> (String, String) {
    let output = nabla_subcommand("sweep")
        .args(GRID)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    (String::from_utf8_lossy(&output.stdout).into_owned(), stderr)
}

/// Every run's log, times left out, by run name.
fn logs_without_times(dir: &Path) -> Vec<(String, Vec<Vec<String>>)> {
    let mut runs: Vec<(String, Vec<Vec<String>>)> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|path| {
            let log = path.join("log.csv");
            let names = [
                "epoch",
                "partial",
                "train_loss",
                "train_acc",
                "test_loss",
                "test_acc",
                "lr",
                "hidden",
                "activation",
                "base_lr",
            ];
            let columns: Vec<Vec<String>> = names.iter().map(|name| column(&log, name)).collect();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                columns,
            )
        })
        .collect();
    runs.sort();
    runs
}

#[test]
fn a_parallel_sweep_equals_a_serial_one() {
    let dir = tempfile::tempdir().unwrap();
    let (serial, parallel) = (dir.path().join("serial"), dir.path().join("parallel"));
    let (output, _) = sweep(&serial, &["--jobs", "1", "--threads", "1"]);
    assert!(
        output.contains("sweep: 8 runs, 1 at a time with 1 thread each (as given)"),
        "{output}"
    );
    sweep(&parallel, &["--jobs", "3", "--threads", "1"]);
    let (a, b) = (logs_without_times(&serial), logs_without_times(&parallel));
    assert_eq!(a.len(), 8);
    assert_eq!(
        a, b,
        "the same runs, scheduled otherwise, give the same numbers"
    );
    let results = |d: &Path| std::fs::read_to_string(d.join("results.md")).unwrap();
    assert_eq!(results(&serial), results(&parallel));
    // The default schedule is printed with its reason.
    let (output, _) = sweep(&dir.path().join("default"), &[]);
    let cores = nabla::threads::available_cores();
    assert!(
        output.contains(&format!(
            "{} at a time with 1 thread each (chosen for throughput on {cores} cores",
            cores.min(8)
        )),
        "{output}"
    );
}

#[test]
fn a_killed_sweep_continues_and_ends_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    sweep(&whole, &["--jobs", "2"]);
    // The same sweep, killed (kill -9, the sweep and its runs) once two runs finished.
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("nabla"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("sweep")
        .args(GRID)
        .args(["--jobs", "2", "--out"])
        .arg(&killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let finished = |d: &Path| {
        std::fs::read_dir(d.join("runs"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().join("summary.json").is_file())
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while finished(&killed) < 2 {
        assert!(Instant::now() < deadline, "no run finished in 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The whole process group (the sweep and its runs), by the system call itself: a
    // negative pid given to kill(1) without `--` can be read as -1, every process.
    extern "C" {
        fn kill(pid: i32, signal: i32) -> i32;
    }
    let group = i32::try_from(child.id()).unwrap();
    assert!(group > 1);
    // SAFETY: kill(2) with a process group id (negated) and SIGKILL (9).
    assert_eq!(unsafe { kill(-group, 9) }, 0);
    child.wait().unwrap();
    let done_before = finished(&killed);
    assert!(
        done_before < 8,
        "the sweep was killed half-way ({done_before} of 8 done)"
    );
    let (_, stderr) = sweep(&killed, &["--jobs", "2"]);
    let ran = stderr.lines().filter(|l| l.contains(" finished")).count();
    assert!(
        ran <= 8 - done_before && ran > 0,
        "only what was left ran again ({done_before} were done): {stderr}"
    );
    let results = |d: &Path| std::fs::read_to_string(d.join("results.md")).unwrap();
    assert_eq!(results(&killed), results(&whole));
    assert_eq!(logs_without_times(&killed), logs_without_times(&whole));
    // Started again, a finished sweep runs nothing; --force runs everything again.
    let (_, stderr) = sweep(&killed, &["--jobs", "2"]);
    assert_eq!(
        stderr.lines().filter(|l| l.contains(" finished")).count(),
        0,
        "{stderr}"
    );
    let (_, stderr) = sweep(&killed, &["--jobs", "2", "--force"]);
    assert_eq!(
        stderr.lines().filter(|l| l.contains(" finished")).count(),
        8,
        "{stderr}"
    );
    assert_eq!(results(&killed), results(&whole));
}

#[test]
fn random_search_is_seeded_and_list_and_collect_work_with_any_runner() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("random");
    let list = |seed: &str| {
        stdout_of(
            nabla_subcommand("sweep")
                .args([
                    "--random",
                    "3",
                    "--random-seed",
                    seed,
                    "--lr",
                    "loguniform:1e-3:1e-1",
                    "--hidden",
                    "16 32",
                ])
                .args([
                    "--epochs",
                    "2",
                    "--extra",
                    "--train-rows 300 --test-rows 50",
                    "--list",
                    "--out",
                ])
                .arg(&out),
        )
    };
    let first = list("1");
    assert_eq!(first, list("1"), "the same seed draws the same points");
    assert_ne!(first, list("2"), "another seed draws others");
    // Listed again with seed 1, which writes its plan back for --collect.
    let first = list("1");
    let commands: Vec<String> = first.lines().map(str::to_string).collect();
    assert_eq!(commands.len(), 3);
    for command in &commands {
        let lr: f64 = command
            .split("--lr ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1e-3..1e-1).contains(&lr), "{command}");
        assert!(
            command.contains("--out ") && command.contains("/runs/r0"),
            "{command}"
        );
    }
    // Any runner: here the shell, one command after another, then --collect.
    for command in &commands {
        let status = Process::new("sh").arg("-c").arg(command).status().unwrap();
        assert!(status.success(), "{command}");
    }
    let output = stdout_of(nabla_subcommand("sweep").arg("--collect").arg(&out));
    assert!(
        output.contains("wrote ") && output.contains("results.html"),
        "{output}"
    );
    let csv = out.join("results.csv");
    assert_eq!(column(&csv, "run").len(), 3);
    let accuracies: Vec<f64> = column(&csv, "test_acc")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        accuracies.windows(2).all(|w| w[0] >= w[1]),
        "best first: {accuracies:?}"
    );
    assert!(column(&csv, "command")
        .iter()
        .all(|c| c.contains(" train ")));
    let page = std::fs::read_to_string(out.join("results.html")).unwrap();
    assert!(
        page.contains("<table id=\"results\">") && page.matches("<svg").count() == 2,
        "a table and two figures"
    );
    for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(
            !page.contains(external),
            "nothing loaded from elsewhere: {external}"
        );
    }
}

#[test]
fn a_sweep_over_layer_specs_runs_each_spec() {
    let dir = tempfile::tempdir().unwrap();
    let specs = "Linear(16), ReLU, Linear(10); Conv2d(2, 3, stride=2), BatchNorm2d, ReLU, Flatten, Dropout(0.2), Linear(10)";
    let output = nabla_subcommand("sweep")
        .args(["--layers", specs, "--lr", "0.1", "--epochs", "2"])
        .args(["--extra", "--train-rows 300 --test-rows 100"])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (name, spec) in [
        ("l1_lr0.1_bs50", "Linear(16), ReLU, Linear(10)"),
        (
            "l2_lr0.1_bs50",
            "Conv2d(2, kernel_size=(3, 3), stride=(2, 2), padding=(0, 0), bias=True), BatchNorm2d",
        ),
    ] {
        let log = dir.path().join("runs").join(name).join("log.csv");
        assert_eq!(column(&log, "epoch"), ["1", "2"], "{name}");
        let architecture = column(&log, "hidden");
        assert!(
            architecture[0].starts_with(spec),
            "{name}: {architecture:?}"
        );
        assert_eq!(column(&log, "activation"), ["", ""], "{name}");
    }
    // The same spec twice (spaced differently) and an empty one: refused by name.
    for (list, expected) in [
        (
            "Linear(10); Linear( 10 )",
            "spec 2 of the list is spec 1 again",
        ),
        ("Linear(10);; Flatten, Linear(10)", "none of them empty"),
        (
            "Linear(10); Flatten, Lin(10)",
            "spec 2 of the list: unknown layer `Lin`",
        ),
    ] {
        let output = nabla_subcommand("sweep")
            .args(["--layers", list, "--list", "--out"])
            .arg(dir.path().join("refused"))
            .output()
            .unwrap();
        assert!(!output.status.success(), "{list}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{list}: {stderr}");
    }
    // Both given: refused before any run.
    let output = nabla_subcommand("sweep")
        .args([
            "--layers",
            "Linear(10)",
            "--hidden",
            "16",
            "--list",
            "--out",
        ])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--layers"));
}
