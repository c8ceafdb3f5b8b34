//! A sweep as a Slurm job array: one task per point, each running its point by index
//! (`nabla sweep --out DIR --task-id $SLURM_ARRAY_TASK_ID`, which reads `DIR/plan.json`),
//! so the grid is written once and the tasks read it.

use std::path::{Path, PathBuf};
use std::process::Command;

use nabla::atomic_file::write_bytes_atomically;

use super::super::args::SweepArgs;
use super::super::CliError;
use super::plan::Plan;
use super::results::shell_line;

/// Writes `DIR/sweep.sbatch` for `plan` and returns its path.
pub fn write_script(args: &SweepArgs, plan: &Plan, dir: &Path) -> Result<PathBuf, CliError> {
    let binary = std::env::current_exe().map_err(CliError::Stdout)?;
    let logs = dir.join("slurm");
    std::fs::create_dir_all(&logs).map_err(|source| CliError::Write {
        path: logs.clone(),
        source,
    })?;
    let mut script = format!(
        "#!/bin/bash\n\
         # A nabla sweep of {points} runs as a Slurm job array, written by `nabla sweep --slurm`.\n\
         # Each task runs one point of {plan_path} by its index.\n\
         #SBATCH --job-name=nabla-sweep\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --cpus-per-task={threads}\n\
         #SBATCH --output={logs}/%a.out\n",
        points = plan.points.len(),
        plan_path = Plan::path(dir).display(),
        last = plan.points.len().saturating_sub(1),
        threads = plan.threads,
        logs = logs.display(),
    );
    for (flag, value) in [
        ("time", &args.time),
        ("partition", &args.partition),
        ("mem", &args.mem),
    ] {
        if let Some(value) = value {
            // One `#SBATCH` line each: a space, a quote or a line break would end the
            // directive early or start a line of shell.
            let plain = |c: char| c.is_ascii_alphanumeric() || "-_:.,+=@%[]".contains(c);
            if value.is_empty() || !value.chars().all(plain) {
                return Err(super::super::settings::invalid(
                    match flag {
                        "time" => "--time",
                        "partition" => "--partition",
                        _ => "--mem",
                    },
                    format!("{value:?}"),
                    "a Slurm value without spaces, quotes or line breaks",
                ));
            }
            script.push_str(&format!("#SBATCH --{flag}={value}\n"));
        }
    }
    let command = shell_line(
        &binary.display().to_string(),
        &[
            "sweep".to_string(),
            "--out".into(),
            dir.display().to_string(),
            "--task-id".into(),
        ],
    );
    script.push_str(&format!(
        "set -euo pipefail\nexec {command} \"$SLURM_ARRAY_TASK_ID\"\n"
    ));
    let path = dir.join("sweep.sbatch");
    write_bytes_atomically(&path, script.as_bytes()).map_err(|source| CliError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Submits `script` with sbatch (waiting for the array to finish with `wait`); returns
/// what sbatch printed.
pub fn submit(script: &Path, wait: bool) -> Result<String, CliError> {
    let mut command = Command::new("sbatch");
    if wait {
        command.arg("--wait");
    }
    let output = command
        .arg(script)
        .output()
        .map_err(|source| CliError::Write {
            path: "sbatch".into(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() {
        return Err(CliError::Write {
            path: script.to_path_buf(),
            source: std::io::Error::other(format!(
                "sbatch failed: {} {}",
                stdout,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        });
    }
    Ok(stdout)
}
