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

    /// Reads the plan of the sweep in `dir` (not checked yet: see `check`).
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

    /// The `nabla train` arguments that resume `point` from its run folder's checkpoint.
    pub fn resume_command(&self, dir: &Path, point: &Point) -> Vec<String> {
        vec![
            "train".to_string(),
            "--resume".into(),
            Self::folder(dir, point).display().to_string(),
            "--threads".into(),
            self.threads.to_string(),
            "--quiet".into(),
        ]
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

/// The most points a sweep may have: a grid (the product of its list lengths) or a
/// random sample beyond it is refused before any work. Ten thousand runs are already
/// far beyond a Slurm array's default `MaxArraySize` (1001); split larger searches.
pub const MAX_POINTS: usize = 10_000;

/// The plan the flags describe, refused before any work when it has more than
/// [`MAX_POINTS`] points or a `--random K` larger than the lists allow.
pub fn plan(args: &SweepArgs, threads: usize) -> Result<Plan, CliError> {
    let given = [
        &args.hidden,
        &args.activation,
        &args.lr,
        &args.batch_size,
        &args.optimizer,
    ];
    let mut values = DIMENSIONS
        .iter()
        .zip(given)
        .map(|(&(flag, default), value)| Values::parse(flag, value.as_deref().unwrap_or(default)))
        .collect::<Result<Vec<_>, _>>()?;
    let layers = args.layers.as_deref().map(layer_specs).transpose()?;
    if let Some(specs) = &layers {
        if args.hidden.is_some() || args.activation.is_some() {
            return Err(invalid(
                "--layers",
                args.layers.as_deref().unwrap_or_default(),
                "no --hidden or --activation with --layers (each spec names every layer)",
            ));
        }
        // The spec takes the place of the hidden widths; the activation is not passed.
        values[0] = Values::List(specs.clone());
        values[1] = Values::List(vec![String::new()]);
    }
    let layers = layers.as_deref();
    let grid_given = given.iter().any(|value| value.is_some()) || layers.is_some();
    let extra = run_flags(args)?;
    let points: Vec<(String, Vec<String>)> = match (args.random, grid_given) {
        (Some(0), _) => return Err(invalid("--random", 0, "at least 1")),
        (Some(count), _) => random_points(&values, count, args.random_seed, layers)?,
        (None, false) => EXPERIMENTS
            .iter()
            .map(|&(name, hidden, activation, lr, batch)| {
                let chosen = [hidden, activation, lr, batch, "sgd"];
                (name.into(), chosen.map(str::to_string).to_vec())
            })
            .collect(),
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
            let size = grid_size(&lists);
            if size.is_none_or(|size| size > MAX_POINTS) {
                return Err(CliError::SweepTooLarge {
                    flag: "the lists",
                    asked: size.map_or_else(|| "more than 2^64".into(), |s| s.to_string()),
                    limit: MAX_POINTS,
                    why: "the cap on a sweep's points",
                });
            }
            (0..size.unwrap_or(0))
                .map(|index| {
                    let chosen = combination(&lists, index);
                    (short_name(&chosen, layers), chosen)
                })
                .collect()
        }
    };
    let mut planned: Vec<Point> = points
        .into_iter()
        .map(|(name, chosen)| {
            let mut run = vec![
                "--dataset".to_string(),
                absolute_if_present(&args.dataset),
                "--epochs".into(),
                args.epochs.to_string(),
                "--seed".into(),
                args.seed.to_string(),
                "--dtype".into(),
                args.dtype.clone(),
            ];
            for (index, ((flag, _), value)) in DIMENSIONS.iter().zip(&chosen).enumerate() {
                match (index, layers) {
                    (0, Some(_)) => run.extend(["--layers".to_string(), value.clone()]),
                    (1, Some(_)) => {}
                    _ => run.extend([flag.to_string(), value.clone()]),
                }
            }
            if let Some(fraction) = args.val_split {
                run.extend(["--val-split".into(), fraction.to_string()]);
            }
            run.extend(extra.iter().cloned());
            let cost = match layers {
                // A spec's cost is not estimated: every point counts the same.
                Some(_) => args.epochs as f64,
                None => cost_of(&chosen, args.epochs),
            };
            Point {
                name,
                args: run,
                cost,
            }
        })
        .collect();
    // Longest first, so that the last runs to finish are short ones.
    planned.sort_by(|a, b| b.cost.total_cmp(&a.cost).then_with(|| a.name.cmp(&b.name)));
    Ok(Plan {
        points: planned,
        threads,
    })
}

/// The number of combinations of `lists`, or `None` beyond `usize`.
fn grid_size(lists: &[&[String]]) -> Option<usize> {
    lists
        .iter()
        .try_fold(1usize, |size, list| size.checked_mul(list.len()))
}

/// Combination `index` of `lists` (mixed radix, the last list varying fastest).
fn combination(lists: &[&[String]], mut index: usize) -> Vec<String> {
    let mut chosen = vec![String::new(); lists.len()];
    for (slot, list) in chosen.iter_mut().zip(lists).rev() {
        *slot = list[index % list.len()].clone();
        index /= list.len();
    }
    chosen
}

/// `count` points drawn with `seed`: without replacement from the grid when every
/// dimension is a list (O(count)), else each value drawn on its own, a combination
/// drawn before drawn again (a few times at most, O(count log count) in all).
fn random_points(
    values: &[Values],
    count: usize,
    seed: u64,
    layers: Option<&[String]>,
) -> Result<Vec<(String, Vec<String>)>, CliError> {
    if count > MAX_POINTS {
        return Err(CliError::SweepTooLarge {
            flag: "--random",
            asked: count.to_string(),
            limit: MAX_POINTS,
            why: "the cap on a sweep's points",
        });
    }
    let mut rng = nabla::init::rng(seed);
    let name =
        |index: usize, chosen: &[String]| format!("r{index:03}_{}", short_name(chosen, layers));
    if let Some(lists) = values.iter().map(Values::list).collect::<Option<Vec<_>>>() {
        let size = grid_size(&lists).unwrap_or(usize::MAX);
        if count > size {
            return Err(CliError::SweepTooLarge {
                flag: "--random",
                asked: count.to_string(),
                limit: size,
                why: "the combinations of the lists: each is drawn at most once",
            });
        }
        return Ok(rand::seq::index::sample(&mut rng, size, count)
            .into_iter()
            .enumerate()
            .map(|(index, drawn)| {
                let chosen = combination(&lists, drawn);
                (name(index, &chosen), chosen)
            })
            .collect());
    }
    let mut drawn = std::collections::HashSet::with_capacity(count);
    let mut points = Vec::with_capacity(count);
    for index in 0..count {
        let mut chosen: Vec<String> = values.iter().map(|v| v.sample(&mut rng)).collect();
        for _ in 0..100 {
            if !drawn.contains(&chosen) {
                break;
            }
            chosen = values.iter().map(|v| v.sample(&mut rng)).collect();
        }
        if !drawn.insert(chosen.clone()) {
            return Err(invalid(
                "--random",
                count,
                "fewer points than the lists and ranges give distinct combinations (draw fewer, or give wider ranges)",
            ));
        }
        points.push((name(index, &chosen), chosen));
    }
    Ok(points)
}

/// `--extra` split as a shell splits it (quotes and backslashes), its data paths made
/// absolute so that every printed command works from any directory or node.
fn run_flags(args: &SweepArgs) -> Result<Vec<String>, CliError> {
    let text = args.extra.as_deref().unwrap_or("");
    let mut flags = shlex::split(text).ok_or_else(|| {
        invalid(
            "--extra",
            text,
            "flags quoted as a shell quotes them (a quote is left open)",
        )
    })?;
    let mut index = 0;
    while index < flags.len() {
        let flag = flags[index].clone();
        if let Some((name, value)) = flag.split_once('=') {
            if DATA_PATH_FLAGS.contains(&name) {
                flags[index] = format!("{name}={}", absolute_if_present(value));
            }
        } else if DATA_PATH_FLAGS.contains(&flag.as_str()) && index + 1 < flags.len() {
            flags[index + 1] = absolute_if_present(&flags[index + 1]);
            index += 1;
        }
        index += 1;
    }
    Ok(flags)
}

/// The `nabla train` flags that name input data.
const DATA_PATH_FLAGS: [&str; 4] = ["--dataset", "--train-file", "--test-file", "--val-file"];

/// `path` made absolute when it names something here (a bundled data set's name, such
/// as `mnist-subset`, is left as it is).
fn absolute_if_present(path: &str) -> String {
    let given = Path::new(path);
    if given.is_absolute() || !given.exists() {
        return path.to_string();
    }
    std::path::absolute(given).map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

/// The specs of a `--layers` list (separated by ';'), each checked by the parser.
fn layer_specs(text: &str) -> Result<Vec<String>, CliError> {
    let mut specs: Vec<String> = Vec::new();
    let items: Vec<&str> = text.split(';').map(str::trim).collect();
    // A trailing ';' is allowed, as a trailing comma in a spec.
    let items = match items.split_last() {
        Some((last, rest)) if last.is_empty() && !rest.is_empty() => rest,
        _ => &items[..],
    };
    for (index, spec) in items.iter().enumerate() {
        let number = index + 1;
        if spec.is_empty() {
            return Err(invalid(
                "--layers",
                text,
                "specs separated by ';', none of them empty",
            ));
        }
        let layers = nabla::network::spec::parse(spec).map_err(|mut error| {
            error.message = format!("spec {number} of the list: {}", error.message);
            CliError::Layers(error)
        })?;
        // Compared in their canonical form: the same layers spaced differently are one.
        let canonical = nabla::network::spec::canonical(&layers);
        if let Some(first) = specs.iter().position(|seen| *seen == canonical) {
            return Err(CliError::Layers(nabla::network::spec::SpecError {
                position: 0,
                token: (*spec).to_string(),
                message: format!("spec {number} of the list is spec {} again", first + 1),
            }));
        }
        specs.push(canonical);
    }
    Ok(specs)
}

/// `h256_relu_lr0.01_bs50`, or `l2_lr0.01_bs50` for the second spec of a `--layers`
/// list (the optimizer only when it is not sgd).
fn short_name(chosen: &[String], layers: Option<&[String]>) -> String {
    let architecture = match layers {
        Some(specs) => {
            let index = specs
                .iter()
                .position(|spec| *spec == chosen[0])
                .unwrap_or(0);
            format!("l{}", index + 1)
        }
        None => format!("h{}_{}", chosen[0].replace(',', "-"), chosen[1]),
    };
    let mut name = format!("{architecture}_lr{}_bs{}", chosen[2], chosen[3]);
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
