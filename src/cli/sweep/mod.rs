//! `nabla sweep` (behind `scripts/sweep.sh`): a grid or a random sample of training runs,
//! planned once (`DIR/plan.json`) and run locally several at a time, listed as commands
//! for GNU parallel or any scheduler, or submitted as a Slurm job array; then collected
//! into tables, curves and one results page.

mod local;
mod plan;
mod results;
mod slurm;

use std::path::Path;
use std::process::Command;

use nabla::threads::available_cores;

use super::args::SweepArgs;
use super::output::{say, tell};
use super::settings::invalid;
use super::CliError;
use plan::Plan;
use results::shell_line;

/// Runs the sweep as the flags say.
pub fn run(args: &SweepArgs) -> Result<(), CliError> {
    if let Some(dir) = &args.collect {
        return report(dir);
    }
    let dir = &args.out;
    if let Some(index) = args.task_id {
        return run_task(dir, index);
    }
    let cores = available_cores();
    let points = plan::plan(args, 1)?.points.len();
    let (jobs, threads) = match (args.jobs, args.threads) {
        (Some(0), _) => return Err(invalid("--jobs", 0, "at least 1")),
        (_, Some(0)) => return Err(invalid("--threads", 0, "at least 1")),
        (Some(jobs), Some(threads)) => (jobs, threads),
        (Some(jobs), None) => (jobs, (cores / jobs).max(1)),
        (None, Some(threads)) => ((cores / threads).max(1), threads),
        // More runs at once beat more threads per run, on the subset and on full MNIST
        // alike (README, "Sweeps"); with fewer runs than cores, the rest go to threads.
        (None, None) => {
            let jobs = cores.min(points).max(1);
            (jobs, (cores / jobs).max(1))
        }
    };
    let plan = plan::plan(args, threads)?;
    std::fs::create_dir_all(dir).map_err(|source| CliError::OutputPath {
        flag: "--out",
        path: dir.clone(),
        source,
    })?;
    forget_changed_points(dir, &plan)?;
    plan.write(dir)?;
    if args.list {
        let binary = std::env::current_exe()
            .map_err(CliError::Stdout)?
            .display()
            .to_string();
        let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        let lines: String = plan
            .points
            .iter()
            .map(|point| format!("{}\n", shell_line(&binary, &plan.command(&absolute, point))))
            .collect();
        return super::output::write_stdout(&lines).map(drop);
    }
    if args.slurm {
        let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        let script = slurm::write_script(args, &plan, &absolute)?;
        say(&format!(
            "wrote {} ({} array tasks, {threads} CPUs each)",
            script.display(),
            plan.points.len()
        ))?;
        if args.submit {
            let answer = slurm::submit(&script, args.wait)?;
            say(&format!("sbatch: {answer}"))?;
            if args.wait {
                return report(dir);
            }
            say(&format!(
                "when the array has finished: scripts/sweep.sh --collect {}",
                dir.display()
            ))?;
        }
        return Ok(());
    }
    say(&format!(
        "sweep: {} runs, {jobs} at a time with {threads} thread{} each ({}) into {}",
        plan.points.len(),
        if threads == 1 { "" } else { "s" },
        if args.jobs.is_none() && args.threads.is_none() {
            format!("chosen for throughput on {cores} cores: runs side by side beat threads within a run")
        } else {
            "as given".to_string()
        },
        dir.display()
    ))?;
    let started = std::time::Instant::now();
    let failures = local::run(&plan, dir, jobs, args.force)?;
    let collected = report(dir);
    say(&format!(
        "sweep wall time: {:.1} s for {} runs",
        started.elapsed().as_secs_f64(),
        plan.points.len()
    ))?;
    if !failures.is_empty() {
        return Err(CliError::SweepFailures {
            count: failures.len(),
            names: failures.join(", "),
        });
    }
    collected
}

/// Builds the results and names the files.
fn report(dir: &Path) -> Result<(), CliError> {
    let written = results::collect(dir)?;
    if let Ok(table) = std::fs::read_to_string(dir.join("results.md")) {
        super::output::write_stdout(&table)?;
    }
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    say(&format!("wrote {}", names.join(", "))).map(drop)
}

/// Runs point `index` of the plan in `dir` (a Slurm array task): resumes it if it
/// stopped with a checkpoint, skips it if it finished.
fn run_task(dir: &Path, index: usize) -> Result<(), CliError> {
    let plan = Plan::read(dir)?;
    let Some(point) = plan.points.get(index) else {
        return Err(invalid(
            "--task-id",
            index,
            "the index of a point of the plan",
        ));
    };
    let binary = std::env::current_exe().map_err(CliError::Stdout)?;
    let folder = Plan::folder(dir, point);
    let args = match local::status(dir, point) {
        local::Status::Done => {
            return say(&format!("{}: finished already", point.name)).map(drop);
        }
        local::Status::Resumable => vec![
            "train".to_string(),
            "--resume".into(),
            folder.display().to_string(),
            "--threads".into(),
            plan.threads.to_string(),
            "--quiet".into(),
        ],
        local::Status::Fresh => {
            let _ = std::fs::remove_dir_all(&folder);
            plan.command(dir, point)
        }
    };
    std::fs::create_dir_all(dir.join("runs")).map_err(|source| CliError::Write {
        path: dir.join("runs"),
        source,
    })?;
    let status = Command::new(binary)
        .args(&args)
        .status()
        .map_err(CliError::Stdout)?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::SweepFailures {
            count: 1,
            names: point.name.clone(),
        })
    }
}

/// A point whose settings changed since an earlier plan in the same folder is run again:
/// its old run folder is removed.
fn forget_changed_points(dir: &Path, plan: &Plan) -> Result<(), CliError> {
    let Ok(previous) = Plan::read(dir) else {
        return Ok(());
    };
    for point in &plan.points {
        let changed = previous
            .points
            .iter()
            .find(|old| old.name == point.name)
            .is_some_and(|old| old.args != point.args || previous.threads != plan.threads);
        if changed {
            tell(&format!(
                "sweep: {} changed since the last plan; running it again",
                point.name
            ));
            let _ = std::fs::remove_dir_all(Plan::folder(dir, point));
        }
    }
    Ok(())
}
