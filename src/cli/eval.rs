//! `nabla eval`: loss and accuracy of a saved model on every set, per-class precision,
//! recall and F1 with their macro averages, and the test confusion matrix; as text or
//! (`--json`) as JSON.

use nabla::data::TargetValues;
use nabla::train::{
    check_fit, evaluate, evaluate_regression, ClassificationReport, Evaluation, TrainError,
};
use nabla::{checkpoint, Dataset, Features, Float, MultiLayerPerceptron};
use ndarray::Array1;

use super::args::EvalArgs;
use super::dtype::{run_in, RunInFloat};
use super::output::write_stdout;
use super::run_folder::{model_of, model_preprocessing};
use super::settings::DataChoice;
use super::CliError;

/// Evaluates and prints.
pub fn run(args: &EvalArgs) -> Result<(), CliError> {
    run_in(args.dtype, args)
}

/// The seed of the run that trained the model at `path`: recorded in a model file by
/// `nabla train`, or in a checkpoint's run settings.
fn trained_seed(path: &std::path::Path) -> Option<u64> {
    let recorded = checkpoint::trained_record(path).ok().and_then(|r| r.seed);
    recorded.or_else(|| {
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
        let preprocessing = model_preprocessing(&path, &model)?;
        let loaded =
            DataChoice::from_args(&self.data)?.load_data::<F>(seed, preprocessing.as_ref())?;
        if let Some(fit) = &loaded.table {
            for warning in super::train::table_warnings(fit) {
                super::output::tell(&format!("nabla: warning: {warning}"));
            }
        }
        let names: Vec<String> = match &preprocessing {
            Some(preprocessing) => preprocessing.classes.clone(),
            None => (0..model.out_features()).map(|c| c.to_string()).collect(),
        };
        let dataset = loaded.dataset;
        check_fit(&model, &dataset)?;
        if let Some(values) = &dataset.values {
            return write_stdout(&regression_report(&model, &dataset, values, self.json)).map(drop);
        }
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
            as_json(&sets, &names)
        } else {
            as_text(&sets, &names)
        };
        write_stdout(&text).map(drop)
    }
}

/// A regression model's loss, RMSE, MAE and R² on every set, as text or JSON.
fn regression_report<F: Float>(
    model: &MultiLayerPerceptron<F>,
    dataset: &Dataset<F>,
    values: &TargetValues,
    json: bool,
) -> String {
    let mut sets = vec![(
        "train",
        evaluate_regression(model, &dataset.train_x, values.train.view(), values.scale),
        values.train.len(),
    )];
    if let (Some(validation), Some(targets)) = (&dataset.validation, &values.val) {
        sets.push((
            "val",
            evaluate_regression(model, &validation.x, targets.view(), values.scale),
            targets.len(),
        ));
    }
    sets.push((
        "test",
        evaluate_regression(model, &dataset.test_x, values.test.view(), values.scale),
        values.test.len(),
    ));
    if json {
        let mut report = serde_json::Map::new();
        report.insert("task".into(), "regression".into());
        for (name, evaluation, rows) in &sets {
            let mut set = serde_json::to_value(evaluation).unwrap_or_default();
            set["rows"] = (*rows).into();
            // A regressor has no accuracy.
            if let Some(set) = set.as_object_mut() {
                set.remove("accuracy");
            }
            report.insert((*name).into(), set);
        }
        return format!("{}\n", serde_json::Value::Object(report));
    }
    sets.iter()
        .map(|(name, evaluation, rows)| {
            format!(
                "{name:<5} {} ({rows} rows)\n",
                super::progress::scores(evaluation)
            )
        })
        .collect()
}

fn correct(set: &SetResult) -> usize {
    (0..set.report.confusion.len())
        .map(|c| set.report.confusion[c][c])
        .sum()
}

fn as_text(sets: &[SetResult], names: &[String]) -> String {
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
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    text.push_str(&format!(
        "{:>width$} precision recall     f1 support (test)\n",
        "class"
    ));
    for (class, metrics) in test.report.classes.iter().enumerate() {
        let name = names
            .get(class)
            .map_or_else(|| class.to_string(), Clone::clone);
        text.push_str(&format!(
            "{name:>width$} {:>9.4} {:>6.4} {:>6.4} {:>7}\n",
            metrics.precision, metrics.recall, metrics.f1, metrics.support
        ));
    }
    let average = test.report.macro_average;
    text.push_str(&format!(
        "{:>width$} {:>9.4} {:>6.4} {:>6.4} {:>7}\n",
        "macro", average.precision, average.recall, average.f1, average.support
    ));
    text.push_str("confusion matrix (test; rows: true label, columns: predicted)\n");
    let classes = test.report.confusion.len();
    let name = |c: usize| names.get(c).map_or_else(|| c.to_string(), Clone::clone);
    let cell = (0..classes)
        .map(|c| name(c).chars().count())
        .max()
        .unwrap_or(0)
        .max(5)
        + 1;
    let header: String = (0..classes)
        .map(|c| format!("{:>cell$}", name(c)))
        .collect();
    text.push_str(&format!("{:width$} {header}\n", ""));
    for (label, row) in test.report.confusion.iter().enumerate() {
        let cells: String = row.iter().map(|count| format!("{count:>cell$}")).collect();
        text.push_str(&format!("{:>width$} {cells}\n", name(label)));
    }
    text
}

fn as_json(sets: &[SetResult], names: &[String]) -> String {
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
    /// The sets and the class names (`classes[i]` names row and column `i`).
    #[derive(serde::Serialize)]
    struct ReportJson<'a> {
        classes: &'a [String],
        #[serde(flatten)]
        sets: std::collections::BTreeMap<&'a str, SetJson<'a>>,
    }
    let report = ReportJson {
        classes: names,
        sets: value,
    };
    // Cannot fail: numbers and strings (a NaN loss serialises as null).
    format!(
        "{}\n",
        serde_json::to_string(&report).expect("the report serialises")
    )
}
