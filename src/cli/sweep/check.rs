//! The checks a plan passes before any run folder is deleted or any run started, whether
//! the flags just made it or it was read from `DIR/plan.json` (a Slurm task's only
//! input, which anyone may have edited): each run name is one plain path component, so
//! that its run folder is `DIR/runs/NAME` and nowhere else; names are unique; and each
//! point's complete `nabla train` command parses with the parser `nabla train` itself
//! uses, and its values pass the checks `nabla train` makes before it starts (with its
//! data files there), so that a typo or a bad value in `--extra` or a grid is refused
//! here instead of failing every run after its finished folder was deleted.

use std::collections::HashSet;
use std::path::Path;

use clap::Parser;

use super::super::args::{Cli, Command};
use super::super::settings::RunConfig;
use super::super::CliError;
use super::plan::Plan;

/// The longest run name (a file name is at most 255 bytes; `NAME.out` and `NAME.lock`
/// sit beside the folder).
const MAX_NAME_LEN: usize = 200;

/// Flags the sweep sets itself for every run (each run writes its own folder's files); a
/// point may not set them.
const SWEEP_FLAGS: [&str; 5] = ["--out", "--resume", "--threads", "--save", "--log"];

/// Checks `plan` for the sweep folder `dir`; the first problem is refused with the
/// point's name (or index) and what was expected.
pub fn check(plan: &Plan, dir: &Path) -> Result<(), CliError> {
    if plan.threads == 0 {
        return Err(refused(
            "the plan",
            "threads is 0, expected at least 1".into(),
        ));
    }
    let mut seen = HashSet::with_capacity(plan.points.len());
    for (index, point) in plan.points.iter().enumerate() {
        check_name(&point.name).map_err(|why| refused(&format!("point {index}"), why))?;
        if !seen.insert(point.name.as_str()) {
            return Err(refused(
                &point.name,
                "two points have this name (each needs its own run folder)".into(),
            ));
        }
        if let Some(flag) = point.args.iter().find(|arg| {
            SWEEP_FLAGS
                .iter()
                .any(|f| *arg == f || arg.starts_with(&format!("{f}=")))
        }) {
            return Err(refused(
                &point.name,
                format!("{flag} is set by the sweep for every run, not by a point or --extra"),
            ));
        }
        let command = plan.command(dir, point);
        let cli = match Cli::try_parse_from(std::iter::once("nabla".to_string()).chain(command)) {
            Ok(cli) => cli,
            Err(error) => {
                let message = error.render().to_string();
                let first = message.lines().next().unwrap_or_default();
                return Err(refused(
                    &point.name,
                    format!(
                        "its nabla train flags do not parse: {}",
                        first.trim_start_matches("error: ")
                    ),
                ));
            }
        };
        // Every value checked as `nabla train` checks it, and the data there.
        let args = match &cli.command {
            Some(Command::Train(args)) => args,
            _ => &cli.train,
        };
        RunConfig::from_args(args)
            .and_then(|run| run.check_data_present())
            .map_err(|error| refused(&point.name, error.to_string()))?;
    }
    Ok(())
}

/// What `point`'s command computes (its checked settings, as JSON), however its flags are
/// spelled or ordered; `None` when they do not parse or pass the checks.
pub fn run_settings(
    plan: &Plan,
    dir: &Path,
    point: &super::plan::Point,
) -> Option<serde_json::Value> {
    let command = plan.command(dir, point);
    let cli = Cli::try_parse_from(std::iter::once("nabla".to_string()).chain(command)).ok()?;
    let args = match &cli.command {
        Some(Command::Train(args)) => args,
        _ => &cli.train,
    };
    RunConfig::from_args(args)
        .ok()
        .and_then(|run| serde_json::to_value(run).ok())
}

/// Whether `name` may name a run folder: one path component of ASCII letters, digits and
/// `._-+,=`, not starting with a dot, at most [`MAX_NAME_LEN`] bytes.
fn check_name(name: &str) -> Result<(), String> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._-+,=".contains(c);
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "run name {name:?}: expected 1 to {MAX_NAME_LEN} characters"
        ));
    }
    if name.starts_with('.') || !name.chars().all(safe) {
        return Err(format!(
            "run name {name:?}: expected one plain folder name (letters, digits and ._-+,=, not starting with a dot)"
        ));
    }
    Ok(())
}

fn refused(point: &str, why: String) -> CliError {
    CliError::PlanRefused {
        point: point.to_string(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_runs_folder_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../../victim",
            "a/b",
            "/abs",
            ".hidden",
            "a b",
            "x\u{0}",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        for good in [
            "a",
            "h384-256_relu_lr1.000e-2_bs50",
            "r007_h16_tanh_lr0.1_bs50_adam",
        ] {
            assert_eq!(check_name(good), Ok(()), "{good:?} refused");
        }
    }
}
