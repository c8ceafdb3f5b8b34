//! `nabla eval`: loss, accuracy and confusion matrix of a saved model.

use nabla::train::{check_fit, evaluate};
use nabla::{checkpoint, Float};
use ndarray::Array2;

use super::args::EvalArgs;
use super::dtype::{run_in, RunInFloat};
use super::output::write_stdout;
use super::settings::DataChoice;
use super::CliError;

/// Evaluates on both sets and prints the test confusion matrix.
pub fn run(args: &EvalArgs) -> Result<(), CliError> {
    run_in(args.dtype, args)
}

impl RunInFloat for &EvalArgs {
    fn run<F: Float>(self) -> Result<(), CliError> {
        let mut model = checkpoint::load::<F>(&self.model)?;
        let dataset = DataChoice::from_args(&self.data)?.load::<F>()?;
        check_fit(&model, &dataset)?;
        let mut text = String::new();
        let mut report = |name: &str, x, y: &ndarray::Array1<usize>| {
            let (evaluation, predictions) = evaluate(&mut model, x, y.view());
            let correct = predictions.iter().zip(y).filter(|(p, l)| p == l).count();
            text.push_str(&format!(
                "{name:<5} loss {:.6} accuracy {:.6} ({correct}/{} correct)\n",
                evaluation.loss,
                evaluation.accuracy,
                y.len()
            ));
            predictions
        };
        report("train", &dataset.train_x, &dataset.train_y);
        let predictions = report("test", &dataset.test_x, &dataset.test_y);
        let mut confusion = Array2::<usize>::zeros((dataset.classes, dataset.classes));
        for (&label, &prediction) in dataset.test_y.iter().zip(&predictions) {
            confusion[[label, prediction]] += 1;
        }
        text.push_str("confusion matrix (test; rows: true label, columns: predicted)\n");
        let header: String = (0..dataset.classes).map(|c| format!("{c:>6}")).collect();
        text.push_str(&format!("     {header}\n"));
        for (label, row) in confusion.rows().into_iter().enumerate() {
            let cells: String = row.iter().map(|count| format!("{count:>6}")).collect();
            text.push_str(&format!("{label:>4} {cells}\n"));
        }
        write_stdout(&text).map(drop)
    }
}
