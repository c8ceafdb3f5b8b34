//! `nabla eval`: loss and accuracy of a saved model on every set, per-class precision,
//! recall and F1 with their macro averages, and the test confusion matrix; as text or
//! (`--json`) as JSON.

use nabla::train::{check_fit, evaluate, ClassificationReport, Evaluation, TrainError};
use nabla::{checkpoint, Features, Float, MultiLayerPerceptron};
use ndarray::Array1;

use super::args::EvalArgs;
use super::dtype::{run_in, RunInFloat};
use super::output::write_stdout;
use super::run_folder::model_of;
use super::settings::DataChoice;
use super::CliError;

/// Evaluates and prints.
pub fn run(args: &EvalArgs) -> Result<(), CliError> {
    run_in(args.dtype, args)
}

/// The seed of the run that trained the model at `path`: recorded in a model file by
/// `nabla train`, or in a checkpoint's run settings.
fn trained_seed(path: &std::path::Path) -> Option<u64> {
    checkpoint::trained_seed(path).ok().flatten().or_else(|| {
        checkpoint::training_run(path)
            .ok()?
            .pointer("/config/train/seed")?
            .as_u64()
    })
}

/// One set's evaluation: the loss, the accuracy and the report.
struct SetResult {
    name: &'static str,
    evaluation: Evaluation,
    report: ClassificationReport,
    rows: usize,
}

fn evaluate_set<F: Float>(
    name: &'static str,
    model: &mut MultiLayerPerceptron<F>,
    x: &Features<F>,
    y: &Array1<usize>,
    classes: usize,
) -> SetResult {
    let (evaluation, predictions) = evaluate(model, x, y.view());
    SetResult {
        name,
        evaluation,
        report: ClassificationReport::new(y.view(), predictions.view(), classes),
        rows: y.len(),
    }
}

impl RunInFloat for &EvalArgs {
    fn run<F: Float>(self) -> Result<(), CliError> {
        let path = model_of(&self.model);
        let mut model = checkpoint::load::<F>(&path)?;
        let seed = self
            .seed
            .or_else(|| trained_seed(&path))
            .unwrap_or(nabla::DEFAULT_SEED);
        let dataset = DataChoice::from_args(&self.data)?.load::<F>(seed)?;
        check_fit(&model, &dataset)?;
        // A report per set; the text prints the test matrix, the JSON every one (a count
        // of up to 20 digits and a comma a cell).
        let reports = 2 + usize::from(dataset.validation.is_some());
        let printed = if self.json { 21 * reports as u64 } else { 21 };
        ClassificationReport::check_size(dataset.classes, reports, printed)
            .map_err(TrainError::from)?;
        let classes = dataset.classes;
        let mut sets = vec![evaluate_set(
            "train",
            &mut model,
            &dataset.train_x,
            &dataset.train_y,
            classes,
        )];
        if let Some(validation) = &dataset.validation {
            sets.push(evaluate_set(
                "val",
                &mut model,
                &validation.x,
                &validation.y,
                classes,
            ));
        }
        let test = evaluate_set(
            "test",
            &mut model,
            &dataset.test_x,
            &dataset.test_y,
            classes,
        );
        sets.push(test);
        let text = if self.json {
            as_json(&sets)
        } else {
            as_text(&sets)
        };
        write_stdout(&text).map(drop)
    }
}

fn correct(set: &SetResult) -> usize {
    (0..set.report.confusion.len())
        .map(|c| set.report.confusion[c][c])
        .sum()
}

fn as_text(sets: &[SetResult]) -> String {
    let mut text = String::new();
    for set in sets {
        text.push_str(&format!(
            "{:<5} loss {:.6} accuracy {:.6} ({}/{} correct)\n",
            set.name,
            set.evaluation.loss,
            set.evaluation.accuracy,
            correct(set),
            set.rows
        ));
    }
    // Cannot be empty: the test set is always evaluated, last.
    let Some(test) = sets.last() else {
        return text;
    };
    text.push_str("per class (test): precision recall f1 support\n");
    for (class, metrics) in test.report.classes.iter().enumerate() {
        text.push_str(&format!(
            "{class:>5} {:>9.4} {:>6.4} {:>6.4} {:>7}\n",
            metrics.precision, metrics.recall, metrics.f1, metrics.support
        ));
    }
    let average = test.report.macro_average;
    text.push_str(&format!(
        "macro {:>9.4} {:>6.4} {:>6.4} {:>7}\n",
        average.precision, average.recall, average.f1, average.support
    ));
    text.push_str("confusion matrix (test; rows: true label, columns: predicted)\n");
    let classes = test.report.confusion.len();
    let header: String = (0..classes).map(|c| format!("{c:>6}")).collect();
    text.push_str(&format!("     {header}\n"));
    for (label, row) in test.report.confusion.iter().enumerate() {
        let cells: String = row.iter().map(|count| format!("{count:>6}")).collect();
        text.push_str(&format!("{label:>4} {cells}\n"));
    }
    text
}

fn as_json(sets: &[SetResult]) -> String {
    /// One set, serialised as it stands (no JSON tree of a large confusion matrix).
    #[derive(serde::Serialize)]
    struct SetJson<'a> {
        loss: f64,
        accuracy: f64,
        correct: usize,
        rows: usize,
        per_class: &'a [nabla::train::ClassMetrics],
        r#macro: &'a nabla::train::ClassMetrics,
        confusion: &'a [Vec<usize>],
    }
    let value: std::collections::BTreeMap<&str, SetJson<'_>> = sets
        .iter()
        .map(|set| {
            (
                set.name,
                SetJson {
                    loss: set.evaluation.loss,
                    accuracy: set.evaluation.accuracy,
                    correct: correct(set),
                    rows: set.rows,
                    per_class: &set.report.classes,
                    r#macro: &set.report.macro_average,
                    confusion: &set.report.confusion,
                },
            )
        })
        .collect();
    // Cannot fail: numbers and strings (a NaN loss serialises as null).
    format!(
        "{}\n",
        serde_json::to_string(&value).expect("the report serialises")
    )
}
