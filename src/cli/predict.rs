//! `nabla predict`: one predicted label per input row (or one probability per class with
//! `--proba`), on stdout or as CSV in `--output`. A model trained on a table applies its
//! stored preprocessing to a table whose columns it finds by name.

use nabla::atomic_file::{protect_input, write_bytes_atomically};
use nabla::data::load_csv_features;
use nabla::data::tabular::HeaderMode;
use nabla::data::TableSource;
use nabla::{checkpoint, train, Features, Float};
use ndarray::{s, Array2};

use super::args::PredictArgs;
use super::dtype::{run_in, RunInFloat};
use super::output::{tell, write_stdout};
use super::run_folder::{claim_outputs, model_of, model_preprocessing};
use super::settings::{delimiter_byte, invalid};
use super::train::unseen_warnings;
use super::CliError;

/// Predicts in chunks and prints or writes the labels or probabilities.
pub fn run(args: &PredictArgs) -> Result<(), CliError> {
    protect_input(&args.input);
    // The model (and an .npz's sidecar) are inputs too: --output may not replace them.
    let model = model_of(&args.model);
    protect_input(&model);
    protect_input(&checkpoint::sidecar_path(&model));
    let _lock = match &args.output {
        Some(path) => Some(claim_outputs(&[("--output", path)])?),
        None => None,
    };
    run_in(args.dtype, args)
}

impl RunInFloat for &PredictArgs {
    fn run<F: Float>(self) -> Result<(), CliError> {
        let path = model_of(&self.model);
        let model = checkpoint::load::<F>(&path)?;
        let preprocessing = model_preprocessing(&path, &model)?;
        let (rows, class_names, label) = match &preprocessing {
            Some(preprocessing) => {
                let source = TableSource {
                    delimiter: self.delimiter.as_deref().map(delimiter_byte).transpose()?,
                    header: self.header.unwrap_or(HeaderMode::Auto),
                    ..TableSource::default()
                };
                let table = source.read_table(&self.input, preprocessing)?;
                let all: Vec<usize> = (0..table.rows()).collect();
                let (x, report) = preprocessing.transform::<F>(&table, &all)?;
                for warning in unseen_warnings("input", &report) {
                    tell(&format!(
                        "nabla: warning: {}: {warning}",
                        self.input.display()
                    ));
                }
                let label = preprocessing.label.clone();
                (x, preprocessing.classes.clone(), label)
            }
            None => {
                let names = (0..model.out_features()).map(|c| c.to_string()).collect();
                (
                    self.assignment_rows::<F>(model.in_features())?,
                    names,
                    "label".to_string(),
                )
            }
        };
        if rows.ncols() != model.in_features() {
            return Err(CliError::InputWidth {
                path: self.input.clone(),
                columns: rows.ncols(),
                features: model.in_features(),
            });
        }
        let features = Features::Dense(rows);
        let mut text = String::new();
        let header = self.output.is_some() || self.proba;
        let target = preprocessing.as_ref().and_then(|p| p.target);
        if let Some(target) = target {
            if self.proba {
                return Err(invalid(
                    "--proba",
                    "given",
                    "a classifier (this model predicts numbers)",
                ));
            }
            if header {
                text.push_str(&csv_field(&label));
                text.push('\n');
            }
            for value in train::outputs(&model, &features) {
                let value = <F as Float>::to_f64(value) * target.scale + target.center;
                text.push_str(&format!("{value}\n"));
            }
        } else if self.proba {
            let probabilities = train::predict_proba(&model, &features);
            let names: Vec<String> = class_names.iter().map(|n| csv_field(n)).collect();
            text.push_str(&names.join(","));
            text.push('\n');
            for row in probabilities.rows() {
                let cells: Vec<String> = row.iter().map(|&p| probability_text(p)).collect();
                text.push_str(&cells.join(","));
                text.push('\n');
            }
        } else {
            if header {
                text.push_str(&csv_field(&label));
                text.push('\n');
            }
            for class in train::predict(&model, &features) {
                let name = &class_names[class];
                text.push_str(&if header {
                    csv_field(name)
                } else {
                    name.clone()
                });
                text.push('\n');
            }
        }
        match &self.output {
            Some(path) => {
                write_bytes_atomically(path, text.as_bytes()).map_err(|source| CliError::Write {
                    path: path.clone(),
                    source,
                })
            }
            None => write_stdout(&text).map(drop),
        }
    }
}

impl PredictArgs {
    /// The rows of an assignment-style CSV for a model of `features` inputs (a trailing
    /// label column is dropped).
    fn assignment_rows<F: Float>(&self, features: usize) -> Result<Array2<F>, CliError> {
        let rows = load_csv_features::<F>(&self.input)?;
        match rows.ncols() {
            n if n == features => Ok(rows),
            // A trailing label column is ignored.
            n if n == features + 1 => Ok(rows.slice_move(s![.., ..features])),
            columns => Err(CliError::InputWidth {
                path: self.input.clone(),
                columns,
                features,
            }),
        }
    }
}

/// A probability in the shortest form that reads back as the same f64, with an exponent
/// below 1e-4 (`1.5e-7`, not `0.00000015`).
fn probability_text(p: f64) -> String {
    if p != 0.0 && p.abs() < 1e-4 {
        format!("{p:e}")
    } else {
        format!("{p}")
    }
}

/// `text` as one CSV field: quoted when it holds a comma, a quote or a line end.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
