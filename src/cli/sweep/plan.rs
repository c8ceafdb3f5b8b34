//! The sweep's plan: its points (the assignment's five experiments, a grid of the lists
//! given, or a seeded random sample of lists and ranges), each a name and the complete
//! `nabla train` arguments, written once to `DIR/plan.json` for every way of running it.

use std::path::{Path, PathBuf};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::super::args::SweepArgs;
use super::super::run_folder::RunFolder;
use super::super::settings::invalid;
use super::super::CliError;

/// One training run of the sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Its name, which is also its run folder's (`DIR/runs/NAME`).
    pub name: String,
    /// `nabla train` arguments, without the output and thread flags.
    pub args: Vec<String>,
    /// Relative cost (epochs times parameters): the longest runs start first.
    pub cost: f64,
}

/// The sweep written to `DIR/plan.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The points, in the order they are started.
    pub points: Vec<Point>,
    /// Threads per run.
    pub threads: usize,
}

impl Plan {
    /// `DIR/plan.json`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("plan.json")
    }

    /// Reads the plan of the sweep in `dir`.
    pub fn read(dir: &Path) -> Result<Self, CliError> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path).map_err(|source| CliError::Write {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|error| CliError::Write {
            path,
            source: std::io::Error::other(error),
        })
    }

    /// Writes the plan to `dir/plan.json`.
    pub fn write(&self, dir: &Path) -> Result<(), CliError> {
        RunFolder::write_json(&Self::path(dir), self)
    }

    /// The run folder of `point`.
    pub fn folder(dir: &Path, point: &Point) -> PathBuf {
        dir.join("runs").join(&point.name)
    }

    /// The complete `nabla train` arguments of `point`, its outputs in `dir`.
    pub fn command(&self, dir: &Path, point: &Point) -> Vec<String> {
        let mut args = vec!["train".to_string()];
        args.extend(point.args.iter().cloned());
        args.extend([
            "--threads".into(),
            self.threads.to_string(),
            "--quiet".into(),
            "--out".into(),
            Self::folder(dir, point).display().to_string(),
        ]);
        args
    }
}

/// The assignment's five experiments (a)-(e): hidden, activation, lr, batch size.
const EXPERIMENTS: [(&str, &str, &str, &str, &str); 5] = [
    ("a", "256", "sigmoid", "0.01", "50"),
    ("b", "256", "sigmoid", "0.001", "50"),
    ("c", "256", "relu", "0.01", "50"),
    ("d", "256", "relu", "0.01", "200"),
    ("e", "384,256", "relu", "0.01", "50"),
];

/// One value of a list, or a range to sample.
#[derive(Clone, Debug, PartialEq)]
enum Values {
    List(Vec<String>),
    LogUniform(f64, f64),
    Uniform(f64, f64),
}

impl Values {
    fn parse(flag: &'static str, text: &str) -> Result<Self, CliError> {
        let range = |kind: &str| -> Option<(f64, f64)> {
            let rest = text.strip_prefix(kind)?;
            let (low, high) = rest.split_once(':')?;
            Some((low.parse().ok()?, high.parse().ok()?))
        };
        if text.starts_with("loguniform:") {
            return match range("loguniform:") {
                Some((low, high)) if low > 0.0 && high > low => Ok(Values::LogUniform(low, high)),
                _ => Err(invalid(
                    flag,
                    text,
                    "loguniform:LOW:HIGH with 0 < LOW < HIGH",
                )),
            };
        }
        if text.starts_with("uniform:") {
            return match range("uniform:") {
                Some((low, high)) if high > low => Ok(Values::Uniform(low, high)),
                _ => Err(invalid(flag, text, "uniform:LOW:HIGH with LOW < HIGH")),
            };
        }
        let list: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        if list.is_empty() {
            return Err(invalid(flag, "''", "one or more values"));
        }
        Ok(Values::List(list))
    }

    fn list(&self) -> Option<&[String]> {
        match self {
            Values::List(list) => Some(list),
            _ => None,
        }
    }

    fn sample(&self, rng: &mut impl Rng) -> String {
        match self {
            Values::List(list) => list[rng.random_range(0..list.len())].clone(),
            Values::LogUniform(low, high) => {
                let value = (low.ln() + rng.random::<f64>() * (high.ln() - low.ln())).exp();
                format!("{value:.3e}")
            }
            Values::Uniform(low, high) => {
                format!("{:.4}", low + rng.random::<f64>() * (high - low))
            }
        }
    }
}

/// The grid's dimensions: flag, default.
const DIMENSIONS: [(&str, &str); 5] = [
    ("--hidden", "256"),
    ("--activation", "sigmoid"),
    ("--lr", "0.01"),
    ("--batch-size", "50"),
    ("--optimizer", "sgd"),
];

/// The plan the flags describe.
pub fn plan(args: &SweepArgs, threads: usize) -> Result<Plan, CliError> {
    let given = [
        &args.hidden,
        &args.activation,
        &args.lr,
        &args.batch_size,
        &args.optimizer,
    ];
    let values = DIMENSIONS
        .iter()
        .zip(given)
        .map(|(&(flag, default), value)| Values::parse(flag, value.as_deref().unwrap_or(default)))
        .collect::<Result<Vec<_>, _>>()?;
    let grid_given = given.iter().any(|value| value.is_some());
    let mut points: Vec<(String, Vec<String>)> = Vec::new();
    match (args.random, grid_given) {
        (Some(0), _) => return Err(invalid("--random", 0, "at least 1")),
        (Some(count), _) => {
            let mut rng = nabla::init::rng(args.random_seed);
            let mut drawn = std::collections::BTreeSet::new();
            for index in 0..count {
                // A combination drawn before is drawn again (a few times at most: a small
                // grid may have fewer combinations than points asked for).
                let mut chosen: Vec<String> = values.iter().map(|v| v.sample(&mut rng)).collect();
                for _ in 0..100 {
                    if !drawn.contains(&chosen) {
                        break;
                    }
                    chosen = values.iter().map(|v| v.sample(&mut rng)).collect();
                }
                drawn.insert(chosen.clone());
                points.push((format!("r{index:03}_{}", short_name(&chosen)), chosen));
            }
        }
        (None, false) => {
            for (name, hidden, activation, lr, batch) in EXPERIMENTS {
                points.push((
                    name.into(),
                    vec![
                        hidden.into(),
                        activation.into(),
                        lr.into(),
                        batch.into(),
                        "sgd".into(),
                    ],
                ));
            }
        }
        (None, true) => {
            let lists = values
                .iter()
                .zip(DIMENSIONS)
                .map(|(v, (flag, _))| {
                    v.list().ok_or_else(|| {
                        invalid(flag, "a range", "a list of values (ranges need --random K)")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut combinations: Vec<Vec<String>> = vec![Vec::new()];
            for list in lists {
                combinations = combinations
                    .into_iter()
                    .flat_map(|prefix| {
                        list.iter().map(move |value| {
                            let mut next = prefix.clone();
                            next.push(value.clone());
                            next
                        })
                    })
                    .collect();
            }
            for chosen in combinations {
                points.push((short_name(&chosen), chosen));
            }
        }
    }
    let extra: Vec<String> = args
        .extra
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut planned: Vec<Point> = points
        .into_iter()
        .map(|(name, chosen)| {
            let mut run = vec![
                "--dataset".to_string(),
                args.dataset.clone(),
                "--epochs".into(),
                args.epochs.to_string(),
                "--seed".into(),
                args.seed.to_string(),
                "--dtype".into(),
                args.dtype.clone(),
            ];
            for ((flag, _), value) in DIMENSIONS.iter().zip(&chosen) {
                run.extend([flag.to_string(), value.clone()]);
            }
            if let Some(fraction) = args.val_split {
                run.extend(["--val-split".into(), fraction.to_string()]);
            }
            run.extend(extra.iter().cloned());
            let cost = cost_of(&chosen, args.epochs);
            Point {
                name,
                args: run,
                cost,
            }
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    if let Some(duplicate) = planned.iter().find(|p| !seen.insert(p.name.clone())) {
        return Err(invalid(
            "--random",
            &duplicate.name,
            "points with different names (draw fewer, or give wider ranges)",
        ));
    }
    // Longest first, so that the last runs to finish are short ones.
    planned.sort_by(|a, b| b.cost.total_cmp(&a.cost).then_with(|| a.name.cmp(&b.name)));
    Ok(Plan {
        points: planned,
        threads,
    })
}

/// `h256_relu_lr0.01_bs50` (the optimizer only when it is not sgd).
fn short_name(chosen: &[String]) -> String {
    let mut name = format!(
        "h{}_{}_lr{}_bs{}",
        chosen[0].replace(',', "-"),
        chosen[1],
        chosen[2],
        chosen[3]
    );
    if chosen[4] != "sgd" {
        name.push('_');
        name.push_str(&chosen[4]);
    }
    name
}

/// Epochs times the parameters of the hidden layers (784 inputs, 10 classes assumed).
fn cost_of(chosen: &[String], epochs: usize) -> f64 {
    let widths: Vec<f64> = chosen[0]
        .split(',')
        .filter_map(|w| w.parse().ok())
        .collect();
    let mut previous = 784.0;
    let mut parameters = 0.0;
    for width in widths.iter().chain(std::iter::once(&10.0)) {
        parameters += previous * width;
        previous = *width;
    }
    epochs as f64 * parameters
}
