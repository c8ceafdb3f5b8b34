//! `nabla sweep` (behind `scripts/sweep.sh`): a grid or a random sample of training runs,
//! planned once (`DIR/plan.json`) and run locally several at a time, listed as commands
//! for GNU parallel or any scheduler, or submitted as a Slurm job array; then collected
//! into tables, curves and one results page.

mod check;
mod children;
mod local;
mod ownership;
mod plan;
mod results;
mod slurm;

use std::collections::HashMap;
use std::path::Path;

use nabla::threads::available_cores;

use super::args::SweepArgs;
use super::output::{say, tell};
use super::settings::invalid;
use super::CliError;
use plan::Plan;
use results::shell_line;

/// Runs the sweep as the flags say. Every flag and every point's `nabla train` command
/// is checked before anything in the sweep folder is removed or started; all but a
/// Slurm task (which claims only its own run) hold the sweep folder's lock throughout.
pub fn run(args: &SweepArgs) -> Result<(), CliError> {
    if let Some(dir) = &args.collect {
        if !dir.join("plan.json").is_file() {
            return Err(invalid(
                "--collect",
                dir.display(),
                "a sweep folder (one holding plan.json)",
            ));
        }
        let _lock = ownership::lock_sweep(dir)?;
        return report(dir);
    }
    let dir = &args.out;
    if let Some(index) = args.task_id {
        if args.list || args.slurm {
            return Err(invalid(
                "--task-id",
                index,
                "no --list or --slurm with it (a task runs one point of the plan already written)",
            ));
        }
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
    check::check(&plan, dir)?;
    let _lock = ownership::lock_sweep(dir)?;
    // Nothing is removed unless every folder the sweep might remove can be.
    ownership::check_removable(dir, &plan)?;
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

/// Builds the results and names the files; refuses, after writing them, a sweep with runs
/// that are incomplete or missing. The caller holds the sweep folder's lock.
fn report(dir: &Path) -> Result<(), CliError> {
    let collected = results::collect(dir)?;
    if let Ok(table) = std::fs::read_to_string(dir.join("results.md")) {
        super::output::write_stdout(&table)?;
    }
    let names: Vec<String> = collected
        .written
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    say(&format!("wrote {}", names.join(", ")))?;
    if collected.incomplete.is_empty() && collected.missing.is_empty() {
        return Ok(());
    }
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    Err(CliError::SweepIncomplete {
        incomplete: collected.incomplete.len(),
        incomplete_names: list(&collected.incomplete),
        missing: collected.missing.len(),
        missing_names: list(&collected.missing),
    })
}

/// Runs point `index` of the plan in `dir` (a Slurm array task): resumes it if it
/// stopped with a checkpoint, skips it if it finished. It claims its own run only, so
/// that the array's tasks run side by side.
fn run_task(dir: &Path, index: usize) -> Result<(), CliError> {
    let plan = Plan::read(dir)?;
    check::check(&plan, dir)?;
    let Some(point) = plan.points.get(index) else {
        return Err(invalid(
            "--task-id",
            index,
            "the index of a point of the plan",
        ));
    };
    let binary = std::env::current_exe().map_err(CliError::Stdout)?;
    let _claim = ownership::claim_run(dir, point)?;
    let args = match local::status(dir, point) {
        local::Status::Done => {
            return say(&format!("{}: finished already", point.name)).map(drop);
        }
        local::Status::Resumable => plan.resume_command(dir, point),
        local::Status::Fresh => {
            ownership::remove_run_folder(dir, point)?;
            plan.command(dir, point)
        }
    };
    let status = children::dying_with_this_process(&binary)
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

/// A point whose `nabla train` flags changed since an earlier plan in the same folder is
/// run again: its old run folder is removed. The schedule (`--jobs`, threads per run) is
/// not a run setting: a finished run stays finished on another machine.
fn forget_changed_points(dir: &Path, plan: &Plan) -> Result<(), CliError> {
    let Ok(previous) = Plan::read(dir) else {
        return Ok(());
    };
    let before: HashMap<&str, &plan::Point> = previous
        .points
        .iter()
        .map(|old| (old.name.as_str(), old))
        .collect();
    for point in &plan.points {
        // Compared by what they compute: the same flags spelled otherwise
        // (`--momentum=0.9`, another order, `0.90`) are the same run.
        let changed = before.get(point.name.as_str()).is_some_and(|old| {
            old.args != point.args
                && (check::run_settings(&previous, dir, old)
                    != check::run_settings(plan, dir, point)
                    || check::run_settings(plan, dir, point).is_none())
        });
        if changed {
            tell(&format!(
                "sweep: {} changed since the last plan; running it again",
                point.name
            ));
            ownership::remove_run_folder(dir, point)?;
        }
    }
    Ok(())
}
