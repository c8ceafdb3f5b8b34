//! Running a sweep's points on this machine, several at a time, each `nabla train` a
//! process of its own (its output in `runs/NAME.out`), with one progress line for the
//! whole sweep. A point whose run finished is skipped; one that stopped with a checkpoint
//! is resumed; one that stopped without is run again.

use std::fs::File;
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nabla::file_lock::FileLock;

use super::super::output::tell;
use super::super::run_folder::RunFolder;
use super::super::signals::Interrupt;
use super::super::CliError;
use super::plan::{Plan, Point};
use super::{children, ownership};

/// Where a point stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Its run finished (all epochs, or early stopping).
    Done,
    /// It stopped with a checkpoint: resume it.
    Resumable,
    /// Not started, or stopped without a checkpoint: run it (again).
    Fresh,
}

/// The status of `point` in the sweep `dir`.
pub fn status(dir: &Path, point: &Point) -> Status {
    let folder = RunFolder::new(&Plan::folder(dir, point));
    let stopped = std::fs::read_to_string(folder.summary())
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|summary| summary["stopped"].as_str().map(str::to_string));
    match stopped.as_deref() {
        Some(reason) if reason == "completed" || reason.starts_with("early stopping") => {
            Status::Done
        }
        _ if folder.checkpoint().is_file() => Status::Resumable,
        _ => Status::Fresh,
    }
}

/// The best accuracy a finished point reached: its final validation accuracy where it
/// has a validation set, else its final test accuracy.
pub fn accuracy(dir: &Path, point: &Point) -> Option<Score> {
    let text = std::fs::read_to_string(RunFolder::new(&Plan::folder(dir, point)).summary()).ok()?;
    let summary: serde_json::Value = serde_json::from_str(&text).ok()?;
    let last = &summary["final"];
    // A regression run's score is its R².
    let score = |set: &serde_json::Value| match set["regression"]["r2"].as_f64() {
        Some(r2) => Some(Score {
            value: r2,
            name: "r2",
        }),
        None => set["accuracy"]
            .as_f64()
            .map(|value| Score { value, name: "acc" }),
    };
    score(&last["val"]).or_else(|| score(&last["test"]))
}

/// A finished point's score: its accuracy, or a regression's R² (higher is better for
/// both), with the name it is printed under.
#[derive(Clone, Copy, Debug)]
pub struct Score {
    /// The value.
    pub value: f64,
    /// `acc` or `r2`.
    pub name: &'static str,
}

/// The points that failed, by name.
pub type Failures = Vec<String>;

/// One running point: its index, its process and its claim (held until it ends).
struct Running {
    index: usize,
    child: Child,
    _claim: FileLock,
}

/// Runs every point of `plan` that has not finished, `jobs` at a time. The first SIGINT or
/// SIGTERM stops the runs (each saves its checkpoint) and starts no more; a second one
/// ends the sweep at once, and its runs with it (see `children`).
pub fn run(plan: &Plan, dir: &Path, jobs: usize, force: bool) -> Result<Failures, CliError> {
    let binary = std::env::current_exe().map_err(CliError::Stdout)?;
    ownership::runs_dir(dir)?;
    let mut waiting: Vec<(usize, Status)> = Vec::new();
    for (index, point) in plan.points.iter().enumerate() {
        let status = if force {
            Status::Fresh
        } else {
            status(dir, point)
        };
        if status != Status::Done {
            waiting.push((index, status));
        }
    }
    let total = plan.points.len();
    let mut done = total - waiting.len();
    waiting.reverse(); // popped from the end: the plan's order
    let progress = Progress::new(total);
    let interrupt = Interrupt::install()?;
    let mut stopping = false;
    let mut running: Vec<Running> = Vec::new();
    let mut failures = Failures::new();
    let mut best = best_so_far(plan, dir);
    progress.show(done, running.len(), waiting.len(), &best);
    while !waiting.is_empty() || !running.is_empty() {
        while running.len() < jobs && !interrupt.requested() {
            let Some((index, status)) = waiting.pop() else {
                break;
            };
            match start(&binary, plan, dir, index, status) {
                Ok(started) => running.push(started),
                Err(busy @ CliError::SweepBusy { .. }) => {
                    let name = &plan.points[index].name;
                    progress.line(&format!("sweep: {name} not started: {busy}"));
                    failures.push(name.clone());
                }
                Err(error) => return Err(error),
            }
            progress.show(done, running.len(), waiting.len(), &best);
        }
        if interrupt.requested() && !stopping {
            stopping = true;
            running
                .iter()
                .for_each(|run| children::ask_to_stop(&run.child));
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut still = Vec::with_capacity(running.len());
        for mut run in running {
            match run.child.try_wait().map_err(CliError::Stdout)? {
                None => still.push(run),
                Some(exit) => {
                    let name = &plan.points[run.index].name;
                    if exit.success() {
                        done += 1;
                        best = best_so_far(plan, dir);
                        progress.finished(name, accuracy(dir, &plan.points[run.index]));
                    } else if !stopping {
                        failures.push(name.clone());
                        progress.failed(name, &dir.join("runs").join(format!("{name}.out")));
                    }
                }
            }
        }
        running = still;
        progress.show(done, running.len(), waiting.len(), &best);
        if interrupt.requested() && running.is_empty() {
            break;
        }
    }
    progress.clear();
    if interrupt.requested() {
        return Err(CliError::Interrupted(format!(
            "sweep interrupted with {done} of {total} runs done; the same command continues it"
        )));
    }
    Ok(failures)
}

/// The best accuracy among finished points, with its point's name.
fn best_so_far(plan: &Plan, dir: &Path) -> String {
    plan.points
        .iter()
        .filter_map(|point| accuracy(dir, point).map(|score| (score, &point.name)))
        .max_by(|a, b| a.0.value.total_cmp(&b.0.value))
        .map_or_else(String::new, |(score, name)| {
            format!("; best {} {:.4} ({name})", score.name, score.value)
        })
}

/// Claims point `index` and starts it: a fresh run in an emptied run folder, or the resume
/// of its run folder. Its process is in a process group of its own (a Ctrl-C reaches the
/// sweep, which stops each run once) and dies with the sweep.
fn start(
    binary: &Path,
    plan: &Plan,
    dir: &Path,
    index: usize,
    status: Status,
) -> Result<Running, CliError> {
    let point = &plan.points[index];
    let claim = ownership::claim_run(dir, point)?;
    let args = match status {
        Status::Resumable => plan.resume_command(dir, point),
        _ => {
            ownership::remove_run_folder(dir, point)?;
            plan.command(dir, point)
        }
    };
    let output_path = dir.join("runs").join(format!("{}.out", point.name));
    let output = File::create(&output_path).map_err(|source| CliError::Write {
        path: output_path.clone(),
        source,
    })?;
    let errors = output.try_clone().map_err(|source| CliError::Write {
        path: output_path.clone(),
        source,
    })?;
    let child = children::dying_with_this_process(binary)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .process_group(0)
        .spawn()
        .map_err(|source| CliError::Write {
            path: binary.to_path_buf(),
            source,
        })?;
    Ok(Running {
        index,
        child,
        _claim: claim,
    })
}

/// One line for the whole sweep on a terminal (runs done / running / left, best accuracy);
/// elsewhere, one line per finished run.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total as u64),
                ProgressDrawTarget::stderr_with_hz(5),
            );
            // Cannot fail: a constant template.
            bar.set_style(
                ProgressStyle::with_template("sweep [{bar:30.green}] {msg} ({elapsed})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Self { bar }
    }

    fn show(&self, done: usize, running: usize, left: usize, best: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(format!("{done} done, {running} running, {left} left{best}"));
        }
    }

    fn finished(&self, name: &str, accuracy: Option<Score>) {
        let accuracy =
            accuracy.map_or_else(String::new, |s| format!(": {} {:.4}", s.name, s.value));
        self.line(&format!("sweep: {name} finished{accuracy}"));
    }

    fn failed(&self, name: &str, output: &Path) {
        self.line(&format!("sweep: {name} failed (see {})", output.display()));
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| tell(text)),
            None => tell(text),
        }
    }

    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
