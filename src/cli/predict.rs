//! `nabla predict`: one predicted label per input row, on stdout.

use std::io::{BufWriter, Write};

use nabla::data::load_csv_features;
use nabla::{checkpoint, Float};
use ndarray::s;

use super::args::{Dtype, PredictArgs};
use super::CliError;

/// Predicts in chunks and prints the labels.
pub fn run(args: &PredictArgs) -> Result<(), CliError> {
    match args.dtype {
        Dtype::F32 => run_typed::<f32>(args),
        Dtype::F64 => run_typed::<f64>(args),
    }
}

fn run_typed<F: Float>(args: &PredictArgs) -> Result<(), CliError> {
    let mut model = checkpoint::load::<F>(&args.model)?;
    let rows = load_csv_features::<F>(&args.input)?;
    let inputs = model.in_features();
    let features = match rows.ncols() {
        n if n == inputs => rows.view(),
        n if n == inputs + 1 => rows.slice(s![.., ..inputs]),
        n => {
            return Err(format!(
                "{}: rows have {n} columns, the model takes {inputs} features (or {inputs} plus a label)",
                args.input.display()
            )
            .into())
        }
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    for start in (0..features.nrows()).step_by(nabla::train::EVAL_CHUNK_ROWS) {
        let end = (start + nabla::train::EVAL_CHUNK_ROWS).min(features.nrows());
        for label in model.predict(features.slice(s![start..end, ..])) {
            writeln!(out, "{label}")?;
        }
    }
    out.flush()?;
    Ok(())
}
