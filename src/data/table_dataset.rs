//! A [`Dataset`] from tables: a training table (and a test table, or a stratified test
//! split of the training table), their preprocessing fitted on the training rows or
//! taken from a trained model, and the features and class labels it gives.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};

use super::preprocess::{
    class_indices, fit_classes, target_values, ColumnChoice, FitSummary, LabelKind, Preprocessing,
    TargetScaling, Task, TransformReport,
};
use super::tabular::{HeaderMode, ReadOptions, Table};
use super::{stratified_split, DataError, Dataset, Features};
use crate::float::Float;

/// Where the tables are and how to read them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableSource {
    /// The training table.
    pub train: PathBuf,
    /// The test table; `None`: a stratified split of the training table.
    pub test: Option<PathBuf>,
    /// The fraction of the training table held out as the test set (when `test` is
    /// `None`).
    pub test_split: Option<f64>,
    /// Use only the first N training rows (after the test split; the preprocessing is
    /// fitted on these).
    pub train_rows: Option<usize>,
    /// Use only the first N test rows.
    pub test_rows: Option<usize>,
    /// The delimiter (`None`: from the extension or sniffed).
    pub delimiter: Option<u8>,
    /// Whether the first row is a header.
    pub header: HeaderMode,
    /// Which columns play which part.
    pub columns: ColumnChoice,
}

/// A data set made from tables, with the preprocessing that made it.
#[derive(Clone, Debug)]
pub struct TableDataset<F> {
    /// Features and class indices.
    pub dataset: Dataset<F>,
    /// The preprocessing (fitted here, or the model's).
    pub preprocessing: Preprocessing,
    /// What fitting found (empty when the preprocessing was given).
    pub summary: FitSummary,
    /// Unseen categories in the test set.
    pub test_report: TransformReport,
}

impl TableSource {
    /// Read options for the training table.
    fn train_options(&self, fitted: Option<&Preprocessing>) -> ReadOptions {
        ReadOptions {
            delimiter: self.delimiter,
            header: self.header,
            text_columns: match fitted {
                Some(preprocessing) => preprocessing.text_columns(),
                None => self.columns.categorical.clone(),
            },
            expected_names: fitted.map(input_names).unwrap_or_default(),
        }
    }

    /// Loads the tables and builds the data set. With `fitted` (a trained model's
    /// preprocessing), nothing is fitted: the same split is made (with the same `seed`)
    /// and the model's transform applied.
    pub fn load<F: Float>(
        &self,
        seed: u64,
        fitted: Option<&Preprocessing>,
    ) -> Result<TableDataset<F>, DataError> {
        let train = Table::read(&self.train, &self.train_options(fitted))?;
        if train.names.len() < 2 {
            return Err(DataError::Table {
                path: self.train.clone(),
                problem: format!(
                    "one column was found ('{}'): a table needs features and a label (is the delimiter right? --delimiter)",
                    train.names[0]
                ),
            });
        }
        if fitted.is_none() {
            self.columns.check_names(&train)?;
        }
        if fitted.map_or(self.columns.task, |p| p.task) == Task::Regression {
            return self.load_regression(train, seed, fitted);
        }
        let (classes, train_labels) = match fitted {
            Some(preprocessing) => {
                let all: Vec<usize> = (0..train.rows()).collect();
                let labels = preprocessing.labels(&train, &all)?;
                (None, labels)
            }
            None => {
                let label = self.columns.label_column(&train)?;
                let classes = fit_classes(&train, label)?;
                let all: Vec<usize> = (0..train.rows()).collect();
                let labels = class_indices(&train, label, (classes.0, &classes.1), &all)?;
                (Some((label, classes)), labels)
            }
        };
        let class_count = match (&classes, fitted) {
            (Some((_, (_, names))), _) => names.len(),
            (None, Some(preprocessing)) => preprocessing.classes.len(),
            (None, None) => unreachable!("classes are fitted or given"),
        };
        let (train_rows, test_rows) = self.split(&train_labels, class_count, seed)?;
        let (preprocessing, summary) = match (fitted, classes) {
            (Some(preprocessing), _) => (preprocessing.clone(), FitSummary::default()),
            (None, Some((label, classes))) => {
                Preprocessing::fit(&train, &self.columns, label, classes, &train_rows)?
            }
            (None, None) => unreachable!("classes are fitted or given"),
        };
        let (train_x, _) = preprocessing.transform::<F>(&train, &train_rows)?;
        let pick =
            |rows: &[usize]| -> Array1<usize> { rows.iter().map(|&r| train_labels[r]).collect() };
        let train_y = pick(&train_rows);
        let (test_x, test_y, test_report) =
            self.test_set(&train, &preprocessing, test_rows, &pick, |table, rows| {
                preprocessing.labels(table, rows)
            })?;
        let dataset = Dataset::new(
            Features::Dense(train_x),
            train_y,
            Features::Dense(test_x),
            test_y,
            preprocessing.classes.len(),
        )?;
        Ok(TableDataset {
            dataset,
            preprocessing,
            summary,
            test_report,
        })
    }
}

impl TableSource {
    /// The training rows and (with a test split) the test rows of a training table
    /// whose rows have classes `labels` (stratified; all 0 for regression).
    fn split(
        &self,
        labels: &[usize],
        classes: usize,
        seed: u64,
    ) -> Result<(Vec<usize>, Option<Vec<usize>>), DataError> {
        match (&self.test, self.test_split) {
            (None, Some(fraction)) => {
                let (kept, held_out) = stratified_split(labels, classes, fraction, seed);
                if kept.is_empty() || held_out.is_empty() {
                    return Err(DataError::Table {
                        path: self.train.clone(),
                        problem: format!(
                            "a test split of {fraction} of {} rows leaves one of the sets empty",
                            labels.len()
                        ),
                    });
                }
                Ok((kept, Some(held_out)))
            }
            _ => Ok(((0..labels.len()).collect(), None)),
        }
        .map(|(mut train, mut test): (Vec<usize>, Option<Vec<usize>>)| {
            train.truncate(self.train_rows.unwrap_or(usize::MAX));
            if let Some(test) = &mut test {
                test.truncate(self.test_rows.unwrap_or(usize::MAX));
            }
            (train, test)
        })
    }

    /// The test set: the test file's rows (their labels or targets by `targets_of`), or
    /// the held-out `test_rows` of `train` (theirs by `pick`), through `preprocessing`.
    fn test_set<F: Float, T>(
        &self,
        train: &Table,
        preprocessing: &Preprocessing,
        test_rows: Option<Vec<usize>>,
        pick: &dyn Fn(&[usize]) -> Array1<T>,
        targets_of: impl Fn(&Table, &[usize]) -> Result<Vec<T>, DataError>,
    ) -> Result<(Array2<F>, Array1<T>, TransformReport), DataError> {
        match (&self.test, test_rows) {
            (Some(path), _) => {
                let test = self.read_table(path, preprocessing)?;
                let all: Vec<usize> =
                    (0..test.rows().min(self.test_rows.unwrap_or(usize::MAX))).collect();
                let targets = targets_of(&test, &all)?;
                let (x, report) = preprocessing.transform::<F>(&test, &all)?;
                Ok((x, Array1::from(targets), report))
            }
            (None, Some(rows)) => {
                let (x, report) = preprocessing.transform::<F>(train, &rows)?;
                Ok((x, pick(&rows), report))
            }
            (None, None) => Err(DataError::Table {
                path: self.train.clone(),
                problem: "no test set: give a test file or a test split".into(),
            }),
        }
    }

    /// [`TableSource::load`] for a numeric target.
    fn load_regression<F: Float>(
        &self,
        train: Table,
        seed: u64,
        fitted: Option<&Preprocessing>,
    ) -> Result<TableDataset<F>, DataError> {
        let label = match fitted {
            Some(preprocessing) => train.position(&preprocessing.label).ok_or_else(|| {
                train.column_error(&preprocessing.label, "the label column is not in this file")
            })?,
            None => self.columns.label_column(&train)?,
        };
        let all: Vec<usize> = (0..train.rows()).collect();
        let targets = target_values(&train, label, &all)?;
        let (train_rows, test_rows) = self.split(&vec![0; train.rows()], 1, seed)?;
        let (mut preprocessing, summary) = match fitted {
            Some(preprocessing) => (preprocessing.clone(), FitSummary::default()),
            None => Preprocessing::fit(
                &train,
                &self.columns,
                label,
                (LabelKind::Integer, Vec::new()),
                &train_rows,
            )?,
        };
        let pick = |rows: &[usize]| -> Array1<f64> { rows.iter().map(|&r| targets[r]).collect() };
        let (train_x, _) = preprocessing.transform::<F>(&train, &train_rows)?;
        let (test_x, test_t, test_report) =
            self.test_set(&train, &preprocessing, test_rows, &pick, |table, rows| {
                preprocessing.targets(table, rows)
            })?;
        let scaling = preprocessing.target.map(|t| (t.center, t.scale));
        let dataset = Dataset::regression(
            Features::Dense(train_x),
            pick(&train_rows),
            Features::Dense(test_x),
            test_t,
            scaling,
        )?;
        if let Some(values) = &dataset.values {
            preprocessing.target = Some(TargetScaling {
                center: values.center,
                scale: values.scale,
            });
        }
        Ok(TableDataset {
            dataset,
            preprocessing,
            summary,
            test_report,
        })
    }

    /// Reads another table of this source's kind for a model with `preprocessing` (a
    /// test, validation or prediction table): its categorical columns as text, and with
    /// `--header auto`, a header exactly when the first row names the model's columns.
    pub fn read_table(
        &self,
        path: &Path,
        preprocessing: &Preprocessing,
    ) -> Result<Table, DataError> {
        let options = self.train_options(Some(preprocessing));
        let table = Table::read(path, &options)?;
        let Some(names) = names_by_position(&table, preprocessing) else {
            return Ok(table);
        };
        // Read again with the model's categorical columns, now found by position, as
        // text; then named as at training.
        let wanted = preprocessing.text_columns();
        let text_columns = table
            .names
            .iter()
            .zip(&names)
            .filter(|(_, name)| wanted.contains(name))
            .map(|(default, _)| default.clone())
            .collect();
        let mut table = Table::read(
            path,
            &ReadOptions {
                text_columns,
                ..options
            },
        )?;
        table.names = names;
        Ok(table)
    }
}

/// For a headerless table given to a model trained on a headerless table (columns
/// `column1`, ...) without its label column: the training names its columns take, in
/// order, the label's skipped (`--label 2` at training, then the other columns at
/// predict time). `None` when the table is not such a table.
fn names_by_position(table: &Table, preprocessing: &Preprocessing) -> Option<Vec<String>> {
    let number = |name: &str| {
        name.strip_prefix("column")
            .and_then(|n| n.parse::<usize>().ok())
    };
    let mut training: Vec<&str> = preprocessing
        .columns
        .iter()
        .map(|c| c.name())
        .chain(preprocessing.ignored.iter().map(String::as_str))
        .collect();
    let headerless =
        number(&preprocessing.label).is_some() && training.iter().all(|n| number(n).is_some());
    if table.header || !headerless || table.names.len() != training.len() {
        return None;
    }
    training.sort_by_key(|name| number(name));
    Some(training.iter().map(|n| n.to_string()).collect())
}

/// The column names a header for a model's preprocessing would hold: its inputs and its
/// label.
fn input_names(preprocessing: &Preprocessing) -> Vec<String> {
    preprocessing
        .columns
        .iter()
        .map(|c| c.name().to_string())
        .chain([preprocessing.label.clone()])
        .collect()
}
