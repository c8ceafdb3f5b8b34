//! `nabla predict`: one predicted label per input row, on stdout.

use nabla::data::load_csv_features;
use nabla::{checkpoint, train, Features, Float};
use ndarray::s;

use super::args::PredictArgs;
use super::dtype::{run_in, RunInFloat};
use super::output::write_stdout;
use super::run_folder::model_of;
use super::CliError;

/// Predicts in chunks and prints the labels.
pub fn run(args: &PredictArgs) -> Result<(), CliError> {
    run_in(args.dtype, args)
}

impl RunInFloat for &PredictArgs {
    fn run<F: Float>(self) -> Result<(), CliError> {
        let model = checkpoint::load::<F>(&model_of(&self.model))?;
        let rows = load_csv_features::<F>(&self.input)?;
        let features = model.in_features();
        let rows = match rows.ncols() {
            n if n == features => rows,
            // A trailing label column is ignored (a strided view of the same rows).
            n if n == features + 1 => rows.slice_move(s![.., ..features]),
            columns => {
                return Err(CliError::InputWidth {
                    path: self.input.clone(),
                    columns,
                    features,
                })
            }
        };
        let predictions = train::predict(&model, &Features::Dense(rows));
        let mut text = String::with_capacity(predictions.len() * 2);
        for label in predictions {
            text.push_str(&label.to_string());
            text.push('\n');
        }
        write_stdout(&text).map(drop)
    }
}
