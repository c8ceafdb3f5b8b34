//! `nabla sweep` against hostile input (issue 19): a changed schedule or a typo never
//! removes finished runs, `plan.json` cannot send a task outside the sweep, `--collect`
//! tells incomplete and missing runs, `--extra` is split as a shell splits it, sizes are
//! capped before any work, scripts run the binary cargo just built, and the results page
//! fits its window.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cli::{column, nabla_subcommand};

/// Three quick runs: 3 epochs on 300 rows.
const GRID: [&str; 10] = [
    "--hidden",
    "16 24 32",
    "--activation",
    "relu",
    "--epochs",
    "3",
    "--threads",
    "1",
    "--extra",
    "--train-rows 300 --test-rows 50",
];

fn sweep(out: &Path, extra: &[&str]) -> std::process::Output {
    nabla_subcommand("sweep")
        .args(GRID)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `nabla sweep --collect out`, which must exit 2; its messages.
fn collect_refused(out: &Path) -> String {
    let collect = nabla_subcommand("sweep")
        .arg("--collect")
        .arg(out)
        .output()
        .unwrap();
    let text = stderr(&collect);
    assert_eq!(collect.status.code(), Some(2), "{text}");
    text
}

/// The three-point grid swept to the end into `DIR/sweep`, `jobs` at a time.
fn finished_sweep(jobs: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let output = sweep(&out, &["--jobs", jobs]);
    assert!(output.status.success(), "{}", stderr(&output));
    (dir, out)
}

pub(super) fn run_folders(out: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    folders
}

/// Each run's log modification time: unchanged means the run was neither removed nor
/// run again.
fn log_times(out: &Path) -> Vec<std::time::SystemTime> {
    run_folders(out)
        .iter()
        .map(|f| f.join("log.csv").metadata().unwrap().modified().unwrap())
        .collect()
}

#[test]
fn another_schedule_or_a_typo_keeps_finished_runs() {
    let (_dir, out) = finished_sweep("1");
    let before = log_times(&out);
    assert_eq!(before.len(), 3);
    // Another --jobs and another thread count (as on another machine): nothing reruns.
    let again = nabla_subcommand("sweep")
        .args(&GRID[..6])
        .args(["--threads", "2", "--jobs", "2", "--extra"])
        .arg(GRID[9])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = stderr(&again);
    assert!(again.status.success(), "{text}");
    assert!(
        !text.contains("changed") && !text.contains(" finished"),
        "{text}"
    );
    assert_eq!(log_times(&out), before);
    // A typo in --extra is refused before anything is removed.
    let typo = nabla_subcommand("sweep")
        .args(&GRID[..8])
        .args([
            "--extra",
            "--train-rows 300 --test-rows 50 --shufle",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let text = stderr(&typo);
    assert_eq!(typo.status.code(), Some(2), "{text}");
    assert!(
        text.starts_with("nabla: error: ") && text.contains("--shufle"),
        "{text}"
    );
    assert_eq!(log_times(&out), before, "the typo removed finished runs");
}

#[test]
fn bad_values_are_refused_before_finished_runs_are_touched() {
    let (_dir, out) = finished_sweep("1");
    let before = log_times(&out);
    for (extra, expected) in [
        (
            "--train-rows 300 --test-rows 50 --val-split 1.5",
            "--val-split 1.5",
        ),
        (
            "--train-rows 300 --test-rows 50 --momentum -1",
            "--momentum -1",
        ),
        (
            "--train-rows 300 --test-rows 50 --val-file /nonexistent.csv",
            "/nonexistent.csv",
        ),
        ("--train-rows 0", "--train-rows 0"),
    ] {
        let output = nabla_subcommand("sweep")
            .args(&GRID[..8])
            .args(["--extra", extra, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{extra}: {text}");
        assert!(text.contains(expected), "{extra}: {text}");
        assert_eq!(log_times(&out), before, "{extra} touched finished runs");
    }
}

#[test]
fn a_folder_holding_other_files_is_never_removed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let notes = out.join("runs/h16_relu_lr0.01_bs50/notes.txt");
    std::fs::create_dir_all(notes.parent().unwrap()).unwrap();
    std::fs::write(&notes, "important").unwrap();
    let output = sweep(&out, &["--jobs", "1"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("notes.txt, which is not a file of a nabla run"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "important");
}

#[test]
fn a_plan_naming_a_folder_outside_the_sweep_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a").join("b").join("sweep");
    assert!(sweep(&out, &["--list"]).status.success());
    let victim = dir.path().join("a").join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep"), "keep").unwrap();
    let plan_path = out.join("plan.json");
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    for name in ["../../victim", "..", "/tmp/x", ".hidden", "a/b"] {
        plan["points"][0]["name"] = name.into();
        std::fs::write(&plan_path, plan.to_string()).unwrap();
        let task = nabla_subcommand("sweep")
            .args(["--task-id", "0", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let text = stderr(&task);
        assert_eq!(task.status.code(), Some(2), "{name}: {text}");
        assert!(text.contains("run name"), "{name}: {text}");
        assert_eq!(
            std::fs::read_to_string(victim.join("keep")).unwrap(),
            "keep"
        );
    }
    assert!(!dir.path().join("a").join("victim").join("log.csv").exists());
}

#[test]
fn collect_tells_incomplete_and_missing_runs_and_does_not_rank_them() {
    let (_dir, out) = finished_sweep("2");
    let folders = run_folders(&out);
    // The best run stopped after epoch 2 of 3; another never started.
    let csv = out.join("results.csv");
    let best = out.join("runs").join(&column(&csv, "run")[0]);
    let log = std::fs::read_to_string(best.join("log.csv")).unwrap();
    let kept: Vec<&str> = log.lines().take(3).collect();
    std::fs::write(best.join("log.csv"), kept.join("\n") + "\n").unwrap();
    std::fs::remove_file(best.join("summary.json")).unwrap();
    let gone = folders.iter().find(|f| **f != best).unwrap();
    std::fs::remove_dir_all(gone).unwrap();
    let text = collect_refused(&out);
    let best_name = best.file_name().unwrap().to_string_lossy().into_owned();
    let gone_name = gone.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        text.contains(&format!("{best_name} (2 of 3 epochs)")) && text.contains(&gone_name),
        "{text}"
    );
    // The table of what exists is written: the finished run first, the stopped one last.
    let runs = column(&csv, "run");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1], best_name, "an incomplete run ranked first");
    assert_eq!(column(&csv, "status")[1], "incomplete: 2 of 3 epochs");
    assert!(std::fs::read_to_string(out.join("results.md"))
        .unwrap()
        .contains("incomplete: 2 of 3 epochs"));
}

#[test]
fn collect_judges_a_run_by_its_log_and_refuses_a_folder_without_a_sweep() {
    let (dir, out) = finished_sweep("2");
    // A finished run whose log was cut to its first epoch (its summary says 3).
    let cut = &run_folders(&out)[0];
    let log = std::fs::read_to_string(cut.join("log.csv")).unwrap();
    std::fs::write(
        cut.join("log.csv"),
        log.lines().take(2).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let text = collect_refused(&out);
    let name = cut.file_name().unwrap().to_string_lossy().into_owned();
    assert!(text.contains(&format!("{name} (1 of 3 epochs)")), "{text}");
    // Not a sweep folder: said so, and nothing created.
    let nowhere = dir.path().join("nowhere");
    let text = collect_refused(&nowhere);
    assert!(
        text.contains("a sweep folder (one holding plan.json)"),
        "{text}"
    );
    assert!(!nowhere.exists());
}

#[test]
fn flags_spelled_otherwise_keep_finished_runs_and_points_may_not_name_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let with_extra = |extra: &str| {
        nabla_subcommand("sweep")
            .args(&GRID[..8])
            .args(["--jobs", "1", "--extra", extra, "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = with_extra("--train-rows 300 --test-rows 50 --momentum 0.9 --shuffle");
    assert!(first.status.success(), "{}", stderr(&first));
    let before = log_times(&out);
    let again = with_extra("--shuffle --momentum=0.90 --test-rows 50 --train-rows 300");
    let text = stderr(&again);
    assert!(again.status.success(), "{text}");
    assert!(!text.contains("changed"), "{text}");
    assert_eq!(log_times(&out), before);
    for flag in ["--log q.csv", "--save q.safetensors"] {
        let output = with_extra(&format!("--train-rows 300 --test-rows 50 {flag}"));
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{text}");
        assert!(text.contains("is set by the sweep"), "{text}");
    }
    // --task-id runs a point of the plan written, --collect collects: flags that would
    // change a plan are refused with them, not ignored.
    for extra in [&["--list"][..], &["--epochs", "5"], &["--force"]] {
        let output = nabla_subcommand("sweep")
            .args(["--task-id", "0", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{extra:?}: {}",
            stderr(&output)
        );
    }
    let output = nabla_subcommand("sweep")
        .arg("--collect")
        .arg(&out)
        .args(["--lr", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

#[test]
fn a_foreign_file_in_any_run_folder_stops_the_sweep_before_it_removes_anything() {
    let (_dir, out) = finished_sweep("1");
    let folders = run_folders(&out);
    // The last point holds a foreign file; the grid changes for every point.
    std::fs::write(folders[2].join("notes.txt"), "mine").unwrap();
    let output = nabla_subcommand("sweep")
        .args(&GRID[..5])
        .args([
            "4",
            "--threads",
            "1",
            "--jobs",
            "1",
            "--extra",
            GRID[9],
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("nothing was removed"), "{text}");
    for folder in &folders {
        assert!(
            folder.join("model.safetensors").is_file(),
            "{} was removed",
            folder.display()
        );
    }
}

#[test]
fn extra_is_split_as_a_shell_splits_it_and_data_paths_are_absolute() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let log = dir.path().join("a b").join("x.safetensors");
    let listed = nabla_subcommand("sweep")
        .args([
            "--hidden",
            "16",
            "--dataset",
            "data/mnist-subset",
            "--extra",
        ])
        .arg(format!("--train-rows 300 --init-from '{}'", log.display()))
        .arg("--list")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    let line = String::from_utf8(listed.stdout).unwrap();
    let words = shlex::split(line.trim()).unwrap();
    let after = |flag: &str| {
        words
            .iter()
            .position(|w| w == flag)
            .map(|i| words[i + 1].clone())
    };
    assert_eq!(
        after("--init-from"),
        Some(log.display().to_string()),
        "{line}"
    );
    let dataset = PathBuf::from(after("--dataset").unwrap());
    assert!(dataset.is_absolute() && dataset.is_dir(), "{line}");
    let open_quote = nabla_subcommand("sweep")
        .args(["--extra", "--init-from 'a b.safetensors", "--list", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(open_quote.status.code(), Some(2));
    assert!(stderr(&open_quote).contains("--extra"));
}

#[test]
fn sizes_beyond_the_cap_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let hundred: String = (1..=100).map(|i| format!("{i} ")).collect();
    let cases: [&[&str]; 3] = [
        &["--random", "18446744073709551615"],
        &["--random", "100000000", "--lr", "loguniform:1e-4:1e-1"],
        // 100 x 100 x 100 x 12: twelve million points.
        &[
            "--hidden",
            &hundred,
            "--lr",
            &hundred,
            "--batch-size",
            &hundred,
            "--activation",
            "relu sigmoid tanh identity relu sigmoid tanh identity relu sigmoid tanh identity",
        ],
    ];
    for flags in cases {
        let started = Instant::now();
        let output = nabla_subcommand("sweep")
            .args(flags)
            .arg("--list")
            .arg("--out")
            .arg(&out)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{text}");
        assert!(text.contains("more than 10000"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!out.join("plan.json").exists(), "work started");
    }
    // Within the cap, a random sample is drawn in about linear time.
    let started = Instant::now();
    let output = nabla_subcommand("sweep")
        .args([
            "--random",
            "10000",
            "--lr",
            "loguniform:1e-4:1e-1",
            "--list",
        ])
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        10_000
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // Without replacement: no more points than the lists combine.
    let output = nabla_subcommand("sweep")
        .args(["--random", "3", "--hidden", "16 32", "--list", "--out"])
        .arg(dir.path().join("small"))
        .output()
        .unwrap();
    assert!(
        stderr(&output).contains("more than 2"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn scripts_run_the_binary_cargo_builds_wherever_its_target_dir_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let elsewhere = tempfile::tempdir().unwrap();
    let printed = std::process::Command::new(root.join("scripts/target-dir.sh"))
        .env("CARGO_TARGET_DIR", elsewhere.path())
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap().trim(),
        elsewhere.path().display().to_string()
    );
    for entry in std::fs::read_dir(root.join("scripts")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("cargo build") {
            assert!(
                !text.contains("target/release"),
                "{} runs target/release/ whatever CARGO_TARGET_DIR says",
                path.display()
            );
        }
    }
}

/// The text elements of an SVG document: (x, y, text).
fn svg_texts(svg: &str) -> Vec<(f64, f64, String)> {
    let document = roxmltree::Document::parse(svg).unwrap();
    document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .map(|node| {
            let number = |name| node.attribute(name).unwrap().parse::<f64>().unwrap();
            (
                number("x"),
                number("y"),
                node.text().unwrap_or("").trim().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_results_page_fits_its_window_and_its_curves_read_well() {
    let (_dir, out) = finished_sweep("2");
    let page = std::fs::read_to_string(out.join("results.html")).unwrap();
    let start = page.find("<table id=\"results\">").unwrap();
    let end = page[start..].find("</table>").unwrap() + start + "</table>".len();
    let table = roxmltree::Document::parse(&page[start..end]).unwrap();
    let header: Vec<String> = table
        .descendants()
        .filter(|n| n.has_tag_name("th"))
        .map(|n| n.text().unwrap_or("").to_string())
        .collect();
    assert!(!header.contains(&"command".to_string()), "{header:?}");
    assert!(!header.contains(&"val_acc".to_string()), "{header:?}");
    let rows: Vec<Vec<String>> = table
        .descendants()
        .filter(|n| n.has_tag_name("tr") && n.children().any(|c| c.has_tag_name("td")))
        .map(|row| {
            row.children()
                .filter(|c| c.has_tag_name("td"))
                .map(|c| c.text().unwrap_or("").to_string())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 3);
    for (index, name) in header.iter().enumerate() {
        assert!(
            rows.iter().any(|row| !row[index].is_empty()),
            "column {name} is empty for every run"
        );
    }
    // Each command below the table, wrapped.
    assert_eq!(page.matches("<dd><code>").count(), 3);
    assert!(page.contains("overflow-wrap: anywhere"));

    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    let texts = svg_texts(&svg);
    // The epoch axes: the row of numbers that share one height.
    let numbers: Vec<&(f64, f64, String)> = texts
        .iter()
        .filter(|(_, _, t)| t.parse::<f64>().is_ok())
        .collect();
    let mut epoch_ticks = Vec::new();
    for (_, y, _) in &numbers {
        let row: Vec<&String> = numbers
            .iter()
            .filter(|(_, other, _)| other == y)
            .map(|(_, _, t)| t)
            .collect();
        if row.len() >= 4 {
            epoch_ticks = row;
        }
    }
    assert!(!epoch_ticks.is_empty(), "no epoch axis labels: {texts:?}");
    assert!(
        epoch_ticks.iter().all(|t| t.parse::<u32>().is_ok()),
        "epoch ticks that are not whole numbers: {epoch_ticks:?}"
    );
    // The legend lies below the axes' labels: it covers no curve.
    let lowest_tick = numbers.iter().map(|(_, y, _)| *y).fold(0.0, f64::max);
    let names: Vec<String> = run_folders(&out)
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let legend: Vec<&(f64, f64, String)> = texts
        .iter()
        .filter(|(_, _, t)| names.iter().any(|n| t.starts_with(n.as_str())))
        .collect();
    assert!(legend.len() >= 3, "{texts:?}");
    assert!(
        legend.iter().all(|(_, y, _)| *y > lowest_tick),
        "legend entries inside the plot: {legend:?} (axis labels down to y = {lowest_tick})"
    );
}

#[test]
fn slurm_settings_cannot_add_lines_to_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    for (flag, value) in [
        ("--partition", "debug\necho INJECTED"),
        ("--time", "1:00 x"),
        ("--mem", "4G'"),
    ] {
        let output = nabla_subcommand("sweep")
            .args(["--hidden", "16", "--slurm", flag, value, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag}: {text}");
        assert!(
            text.contains("without spaces, quotes or line breaks"),
            "{text}"
        );
        assert!(!out.join("sweep.sbatch").exists());
    }
}
