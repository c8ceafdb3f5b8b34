//! What a table's columns mean, fitted on the training rows and kept with the model:
//! the label and its classes (sorted, as scikit-learn's `LabelEncoder`), the numeric
//! columns (missing values imputed with the training median or mean, then standardised
//! or min-max scaled) and the categorical columns (one-hot, a missing value its own
//! category, an unseen one all zeros). [`Preprocessing`] serialises to the JSON that
//! `nabla train` stores in the model file's metadata (`preprocessing`), so that `eval`,
//! `predict` and Python apply the same transform:
//!
//! ```text
//! numeric:      x' = (x, or fill where missing, - center) / scale
//! categorical:  one column per entry of `categories` (null = missing), 1 where equal
//! ```

use std::collections::BTreeSet;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::tabular::{Column, Table, MISSING_CODE};
use super::DataError;
use crate::float::Float;

/// How numeric columns are scaled (fitted on the training rows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// `(x - mean) / std` (population std; a constant column keeps scale 1), as
    /// scikit-learn's `StandardScaler`.
    #[default]
    Standard,
    /// `(x - min) / (max - min)` (a constant column keeps scale 1), as `MinMaxScaler`.
    Minmax,
    /// As given.
    None,
}

/// How missing numeric values are filled (fitted on the training rows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impute {
    /// The column's median (the mean of the two middle values for an even count).
    #[default]
    Median,
    /// The column's mean.
    Mean,
    /// Not filled: a missing numeric value is refused, naming its line and column.
    None,
}

macro_rules! parse_choice {
    ($type:ty, $($text:literal => $value:expr),+) => {
        impl std::str::FromStr for $type {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($value),)+
                    other => Err(format!(
                        "'{other}': expected {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let name = [$(($value, $text)),+]
                    .into_iter()
                    .find(|(value, _)| value == self)
                    .map_or("?", |(_, text)| text);
                f.write_str(name)
            }
        }
    };
}

/// What the label is: classes or numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Text or integer labels; softmax cross-entropy.
    #[default]
    Classification,
    /// Numeric labels; mean squared error on the standardised target.
    Regression,
}

parse_choice!(Task, "classification" => Task::Classification, "regression" => Task::Regression);
parse_choice!(Scale, "standard" => Scale::Standard, "minmax" => Scale::Minmax, "none" => Scale::None);
parse_choice!(Impute, "median" => Impute::Median, "mean" => Impute::Mean, "none" => Impute::None);

/// Which columns play which part, as the user said.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnChoice {
    /// The label column: a name, or a 0-based index (negative from the end); `None`:
    /// the last column.
    pub label: Option<String>,
    /// Columns left out.
    pub ignore: Vec<String>,
    /// Columns treated as categories even if they hold numbers (text columns are
    /// categorical anyway).
    pub categorical: Vec<String>,
    /// Scaling of numeric columns.
    pub scale: Scale,
    /// Filling of missing numeric values.
    pub impute: Impute,
    /// Classes or numbers.
    pub task: Task,
}

impl ColumnChoice {
    /// The index of the label column in `table`.
    pub fn label_column(&self, table: &Table) -> Result<usize, DataError> {
        let width = table.names.len();
        let Some(label) = &self.label else {
            return Ok(width - 1);
        };
        if let Some(position) = table.position(label) {
            return Ok(position);
        }
        let index = label.parse::<i64>().ok().and_then(|index| {
            let resolved = if index < 0 {
                width as i64 + index
            } else {
                index
            };
            (0..width as i64)
                .contains(&resolved)
                .then_some(resolved as usize)
        });
        index.ok_or_else(|| DataError::Table {
            path: table.path.clone(),
            problem: format!(
                "--label {label}: no such column (columns: {}; or an index from 0 to {}, negative from the end)",
                table.names.join(", "),
                width - 1
            ),
        })
    }

    /// Checks that every named column exists in `table`, and that the label is neither
    /// ignored nor (for regression) categorical.
    pub fn check_names(&self, table: &Table) -> Result<(), DataError> {
        let label = &table.names[self.label_column(table)?];
        let misuse = [
            ("--ignore", self.ignore.contains(label)),
            (
                "--categorical",
                self.task == Task::Regression && self.categorical.contains(label),
            ),
        ];
        if let Some((flag, _)) = misuse.iter().find(|(_, misused)| *misused) {
            return Err(DataError::Table {
                path: table.path.clone(),
                problem: format!("{flag} {label}: that is the label column"),
            });
        }
        for (flag, names) in [
            ("--ignore", &self.ignore),
            ("--categorical", &self.categorical),
        ] {
            if let Some(missing) = names.iter().find(|name| table.position(name).is_none()) {
                return Err(DataError::Table {
                    path: table.path.clone(),
                    problem: format!(
                        "{flag} {missing}: no such column (columns: {})",
                        table.names.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

/// How labels are read: integers (compared as numbers, `3.0` is class `3`) or text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelKind {
    /// Integer labels, classes sorted numerically.
    Integer,
    /// Text labels, classes sorted as strings.
    Text,
}

/// One input column of the model, in the order the features are laid out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum InputColumn {
    /// One feature: `(value, or fill where missing, - center) / scale`.
    Numeric {
        /// The column's name.
        name: String,
        /// The value a missing entry takes (`None`: missing values are refused).
        fill: Option<f64>,
        /// Subtracted first.
        center: f64,
        /// Divided by next (never 0).
        scale: f64,
    },
    /// One feature per category, 1 where the value equals it (`None`: missing).
    Categorical {
        /// The column's name.
        name: String,
        /// The categories, sorted, the missing value (`null`) last if the training rows
        /// had one.
        categories: Vec<Option<String>>,
    },
}

impl InputColumn {
    /// The column's name.
    pub fn name(&self) -> &str {
        match self {
            InputColumn::Numeric { name, .. } | InputColumn::Categorical { name, .. } => name,
        }
    }

    /// Features it becomes.
    pub fn width(&self) -> usize {
        match self {
            InputColumn::Numeric { .. } => 1,
            InputColumn::Categorical { categories, .. } => categories.len(),
        }
    }
}

/// A regression target's standardisation: the model outputs `(value - center) / scale`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetScaling {
    /// The training targets' mean.
    pub center: f64,
    /// Their standard deviation (1 for a constant target).
    pub scale: f64,
}

/// The preprocessing of a table-trained model, as stored in its metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// `classification` or `regression`.
    pub task: Task,
    /// The label column's name.
    pub label: String,
    /// How labels are read.
    pub label_kind: LabelKind,
    /// The class names; class `i` is `classes[i]` (empty for regression).
    pub classes: Vec<String>,
    /// For regression, how the target was standardised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetScaling>,
    /// Columns left out (`--ignore`).
    pub ignored: Vec<String>,
    /// The scaling that was fitted.
    pub scale: Scale,
    /// The imputation that was fitted.
    pub impute: Impute,
    /// The input columns, in feature order.
    pub columns: Vec<InputColumn>,
}

/// What fitting found, for the run header.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FitSummary {
    /// Missing values per used column in the training rows (only columns with some).
    pub missing: Vec<(String, usize)>,
    /// Text columns with a different value on every training row (an ID?).
    pub id_like: Vec<String>,
}

/// What a transform met that a user should hear about.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransformReport {
    /// Per categorical column, the cells holding a category the training rows did not
    /// have (encoded as all zeros), with the first such value.
    pub unseen: Vec<(String, usize, String)>,
}

/// The classes of `table`'s label column `label`: integer labels sorted numerically,
/// otherwise text sorted as strings. A missing label, a fractional number or a single
/// class is refused.
pub fn fit_classes(table: &Table, label: usize) -> Result<(LabelKind, Vec<String>), DataError> {
    let column = &table.columns[label];
    let name = &table.names[label];
    if let Some(row) = (0..column.len()).find(|&row| column.is_missing(row)) {
        return Err(table.cell_error(row, label, "is a missing label (empty, NA, N/A, NaN, null, None and ? are missing; every row needs a label)"));
    }
    let (kind, classes) = match column {
        Column::Numbers(values) => {
            if let Some(row) = values.iter().position(|v| v.fract() != 0.0) {
                return Err(table.cell_error(
                    row,
                    label,
                    "is not a class label (an integer or text): give --task regression to predict numbers",
                ));
            }
            // Beyond 2^53 two integers can read as one number: refused, not merged.
            if let Some(row) = values.iter().position(|v| v.abs() > 2f64.powi(53)) {
                return Err(table.cell_error(
                    row,
                    label,
                    "is an integer label beyond 2^53, which reads as the same number as its neighbours: make the labels text (a prefix, such as id123...) so that no two merge",
                ));
            }
            let mut sorted: Vec<f64> = values.clone();
            sorted.sort_by(f64::total_cmp);
            sorted.dedup();
            (
                LabelKind::Integer,
                sorted.iter().map(|v| integer_name(*v)).collect::<Vec<_>>(),
            )
        }
        Column::Text { codes, levels, .. } => {
            let used: BTreeSet<&str> = codes.iter().map(|&c| levels[c as usize].as_str()).collect();
            (
                LabelKind::Text,
                used.into_iter().map(str::to_string).collect(),
            )
        }
    };
    if classes.len() < 2 {
        return Err(table.column_error(
            name,
            format!(
                "the label has one class ('{}'): at least two are needed",
                classes.first().cloned().unwrap_or_default()
            ),
        ));
    }
    Ok((kind, classes))
}

/// The class (an index into `classes`) of each of `rows` of `table`'s column `label`; a
/// label not among `classes` is refused with its line.
pub fn class_indices(
    table: &Table,
    label: usize,
    (kind, classes): (LabelKind, &[String]),
    rows: &[usize],
) -> Result<Vec<usize>, DataError> {
    let column = &table.columns[label];
    rows.iter()
        .map(|&row| {
            let text = match (kind, column) {
                (_, c) if c.is_missing(row) => None,
                (LabelKind::Integer, Column::Numbers(values)) => Some(values[row])
                    .filter(|v| v.fract() == 0.0)
                    .map(integer_name),
                (LabelKind::Integer, c) => c
                    .text_of(row)
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.fract() == 0.0)
                    .map(integer_name),
                (LabelKind::Text, c) => Some(c.text_of(row)),
            };
            text.and_then(|text| classes.iter().position(|c| *c == text))
                .ok_or_else(|| {
                    table.cell_error(
                        row,
                        label,
                        format!("is not one of the classes ({})", classes.join(", ")),
                    )
                })
        })
        .collect()
}

/// The numbers in column `label` of `table` at `rows`: a regression target. Text or a
/// missing value is refused with its line.
pub fn target_values(table: &Table, label: usize, rows: &[usize]) -> Result<Vec<f64>, DataError> {
    match &table.columns[label] {
        Column::Numbers(values) => rows
            .iter()
            .map(|&row| {
                let value = values[row];
                if value.is_nan() {
                    Err(table.cell_error(row, label, "is a missing target (empty, NA, N/A, NaN, null, None and ? are missing; every row needs one)"))
                } else {
                    Ok(value)
                }
            })
            .collect(),
        Column::Text {
            first_text: first_text @ Some(_),
            ..
        } => Err(text_in_numbers(
            table,
            &table.names[label],
            first_text,
            "is text: a regression target must be a number".into(),
        )),
        Column::Text { .. } => Err(table.column_error(
            &table.names[label],
            "is read as categories (--categorical?): a regression target must be numbers",
        )),
    }
}

/// An integer label's class name (`3`, not `3.0`).
fn integer_name(value: f64) -> String {
    format!("{value:.0}")
}

impl Preprocessing {
    /// Fits the preprocessing on rows `train_rows` of `table`, whose label column is
    /// `label` with classes `classes` (from [`fit_classes`]).
    pub fn fit(
        table: &Table,
        choice: &ColumnChoice,
        label: usize,
        (label_kind, classes): (LabelKind, Vec<String>),
        train_rows: &[usize],
    ) -> Result<(Self, FitSummary), DataError> {
        choice.check_names(table)?;
        let mut columns = Vec::new();
        let mut summary = FitSummary::default();
        for (j, name) in table.names.iter().enumerate() {
            if j == label || choice.ignore.contains(name) {
                continue;
            }
            let column = &table.columns[j];
            let missing = train_rows.iter().filter(|&&r| column.is_missing(r)).count();
            if missing == train_rows.len() {
                return Err(table.column_error(
                    name,
                    "every value is missing in the training rows (--ignore it?)",
                ));
            }
            if missing > 0 {
                summary.missing.push((name.clone(), missing));
            }
            let categorical = choice.categorical.contains(name);
            let input = match column {
                Column::Numbers(values) => {
                    fit_numeric(&table.path, name, values, train_rows, choice)?
                }
                Column::Text {
                    numeric_values,
                    first_text,
                    ..
                } if !categorical
                    && *numeric_values > column.len() - column.missing() - numeric_values =>
                {
                    return Err(text_in_numbers(
                        table,
                        name,
                        first_text,
                        format!("is text in a numeric column (--categorical {name} to treat its values as categories, or fix the value)"),
                    ));
                }
                Column::Text { levels, .. } if !categorical && decimal_commas(levels) => {
                    let example = levels
                        .iter()
                        .find(|l| l.contains(','))
                        .cloned()
                        .unwrap_or_default();
                    return Err(table.column_error(
                        name,
                        format!("holds numbers with decimal commas ('{example}'): nabla reads '.' decimals (convert the file, or --categorical {name} to treat them as categories)"),
                    ));
                }
                Column::Text { codes, levels, .. } => {
                    let used: BTreeSet<&str> = train_rows
                        .iter()
                        .filter(|&&r| codes[r] != MISSING_CODE)
                        .map(|&r| levels[codes[r] as usize].as_str())
                        .collect();
                    if used.len() == train_rows.len() - missing && used.len() >= 20 {
                        summary.id_like.push(name.clone());
                    }
                    let mut categories: Vec<Option<String>> =
                        used.into_iter().map(|c| Some(c.to_string())).collect();
                    if missing > 0 {
                        categories.push(None);
                    }
                    InputColumn::Categorical {
                        name: name.clone(),
                        categories,
                    }
                }
            };
            columns.push(input);
        }
        if columns.is_empty() {
            return Err(DataError::Table {
                path: table.path.clone(),
                problem: "no feature columns are left (all ignored?)".into(),
            });
        }
        let preprocessing = Preprocessing {
            task: choice.task,
            label: table.names[label].clone(),
            label_kind,
            classes,
            target: None,
            ignored: choice.ignore.clone(),
            scale: choice.scale,
            impute: choice.impute,
            columns,
        };
        Ok((preprocessing, summary))
    }

    /// Checks that this preprocessing fits a model of `inputs` inputs and `outputs`
    /// outputs and is sound (finite numbers, positive scales, distinct categories, one
    /// class name per output, a regression target's scaling): what a hand-edited or
    /// damaged model file could break. The reason, if not.
    pub fn check_model(&self, inputs: usize, outputs: usize) -> Result<(), String> {
        if self.features() != inputs {
            return Err(format!(
                "its preprocessing makes {} features but the network takes {inputs}",
                self.features()
            ));
        }
        match (self.task, self.target) {
            (Task::Classification, _) if self.classes.len() != outputs => {
                return Err(format!(
                    "it names {} classes but the network has {outputs} outputs",
                    self.classes.len()
                ))
            }
            (Task::Regression, None) => {
                return Err("a regression model without its target's scaling".into())
            }
            (Task::Regression, Some(_)) if outputs != 1 => {
                return Err(format!(
                    "a regression model with {outputs} outputs (1 expected)"
                ))
            }
            (Task::Regression, Some(t))
                if !(t.center.is_finite() && t.scale.is_finite() && t.scale > 0.0) =>
            {
                return Err(format!(
                    "its target scaling (center {}, scale {}) is not finite and positive",
                    t.center, t.scale
                ))
            }
            _ => {}
        }
        let distinct =
            |names: &[String]| names.iter().collect::<BTreeSet<_>>().len() == names.len();
        if !distinct(&self.classes) {
            return Err("its class names repeat".into());
        }
        for column in &self.columns {
            match column {
                InputColumn::Numeric {
                    name,
                    fill,
                    center,
                    scale,
                } => {
                    let sound = center.is_finite()
                        && scale.is_finite()
                        && *scale > 0.0
                        && fill.is_none_or(f64::is_finite);
                    if !sound {
                        return Err(format!("column '{name}': center {center}, scale {scale}, fill {fill:?} (finite numbers and a positive scale expected)"));
                    }
                }
                InputColumn::Categorical { name, categories } => {
                    if categories.iter().collect::<BTreeSet<_>>().len() != categories.len() {
                        return Err(format!("column '{name}': its categories repeat"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Features per row after the transform.
    pub fn features(&self) -> usize {
        self.columns.iter().map(InputColumn::width).sum()
    }

    /// The names of the categorical input columns (to read as text at predict time).
    pub fn text_columns(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .columns
            .iter()
            .filter(|c| matches!(c, InputColumn::Categorical { .. }))
            .map(|c| c.name().to_string())
            .collect();
        if self.label_kind == LabelKind::Text {
            names.push(self.label.clone());
        }
        names
    }

    /// The class of each of `rows` of `table` (the label column found by name); a label
    /// the model does not know is refused with its line.
    pub fn labels(&self, table: &Table, rows: &[usize]) -> Result<Vec<usize>, DataError> {
        let Some(label) = table.position(&self.label) else {
            return Err(table.column_error(&self.label, "the label column is not in this file"));
        };
        class_indices(table, label, (self.label_kind, &self.classes), rows)
    }

    /// The regression target of each of `rows` of `table` (the label column found by
    /// name), in its own units; a missing or non-numeric value is refused with its line.
    pub fn targets(&self, table: &Table, rows: &[usize]) -> Result<Vec<f64>, DataError> {
        let Some(label) = table.position(&self.label) else {
            return Err(table.column_error(&self.label, "the label column is not in this file"));
        };
        target_values(table, label, rows)
    }

    /// Checks that `table` has every input column and no column the model does not know
    /// (its label and ignored columns may be there or not).
    pub fn check_columns(&self, table: &Table) -> Result<(), DataError> {
        for input in &self.columns {
            if table.position(input.name()).is_none() {
                return Err(table.column_error(
                    input.name(),
                    format!(
                        "the model needs this column but the file has none by that name (it has: {})",
                        table.names.join(", ")
                    ),
                ));
            }
        }
        for name in &table.names {
            let known = *name == self.label
                || self.ignored.contains(name)
                || self.columns.iter().any(|c| c.name() == name);
            if !known {
                return Err(table.column_error(
                    name,
                    "the model was not trained with this column (remove it from the file)",
                ));
            }
        }
        Ok(())
    }

    /// The features `(rows.len(), features)` of rows `rows` of `table`, columns matched
    /// by name.
    pub fn transform<F: Float>(
        &self,
        table: &Table,
        rows: &[usize],
    ) -> Result<(Array2<F>, TransformReport), DataError> {
        self.check_columns(table)?;
        let mut x = Array2::<F>::zeros((rows.len(), self.features()));
        let mut report = TransformReport::default();
        let mut offset = 0;
        for input in &self.columns {
            // Present: checked above.
            let j = table.position(input.name()).unwrap_or_default();
            let column = &table.columns[j];
            match (input, column) {
                (
                    InputColumn::Numeric {
                        fill,
                        center,
                        scale,
                        ..
                    },
                    Column::Numbers(values),
                ) => {
                    for (i, &row) in rows.iter().enumerate() {
                        let value = match (values[row], fill) {
                            (v, _) if !v.is_nan() => v,
                            (_, Some(fill)) => *fill,
                            (_, None) => {
                                return Err(table.cell_error(
                                    row,
                                    j,
                                    "is missing (--impute none: fill it in, or train with --impute median)",
                                ))
                            }
                        };
                        let scaled = F::from_f64((value - center) / scale);
                        if !scaled.is_finite() {
                            return Err(table.cell_error(
                                row,
                                j,
                                format!("is too large for {} once scaled (use --dtype f64, or rescale the column)", F::NAME),
                            ));
                        }
                        x[[i, offset]] = scaled;
                    }
                }
                (InputColumn::Numeric { name, .. }, Column::Text { first_text, .. }) => {
                    return Err(text_in_numbers(
                        table,
                        name,
                        first_text,
                        "is text in a column the model reads as numbers".into(),
                    ));
                }
                (InputColumn::Categorical { name, categories }, column) => {
                    let mut unseen = 0;
                    let mut first = None;
                    for (i, &row) in rows.iter().enumerate() {
                        let value = (!column.is_missing(row)).then(|| column.text_of(row));
                        // A number matches its category however it is written (3, 3.0).
                        let as_number = |text: &str| text.parse::<f64>().ok();
                        let found = categories.iter().position(|c| *c == value).or_else(|| {
                            let number = as_number(value.as_deref()?)?;
                            categories
                                .iter()
                                .position(|c| c.as_deref().and_then(as_number) == Some(number))
                        });
                        match found {
                            Some(k) => x[[i, offset + k]] = F::one(),
                            None => {
                                unseen += 1;
                                first.get_or_insert_with(|| {
                                    value.unwrap_or_else(|| "(missing)".into())
                                });
                            }
                        }
                    }
                    if unseen > 0 {
                        report
                            .unseen
                            .push((name.clone(), unseen, first.unwrap_or_default()));
                    }
                }
            }
            offset += input.width();
        }
        Ok((x, report))
    }
}

/// The error for the first text value (`first_text`: its line and text) of column `name`,
/// where numbers belong.
fn text_in_numbers(
    table: &Table,
    name: &str,
    first_text: &Option<(u64, String)>,
    problem: String,
) -> DataError {
    let (line, value) = first_text.clone().unwrap_or_default();
    DataError::Cell {
        path: table.path.clone(),
        line,
        column: name.to_string(),
        value,
        problem,
    }
}

/// The numeric column `name`: its fill value and scaling from the training rows.
fn fit_numeric(
    table_path: &std::path::Path,
    name: &str,
    values: &[f64],
    train_rows: &[usize],
    choice: &ColumnChoice,
) -> Result<InputColumn, DataError> {
    let mut present: Vec<f64> = train_rows
        .iter()
        .map(|&r| values[r])
        .filter(|v| !v.is_nan())
        .collect();
    let fill = match choice.impute {
        Impute::Median => Some(median(&mut present)),
        Impute::Mean => Some(mean(&present)),
        Impute::None => None,
    };
    let missing = train_rows.len() - present.len();
    // The statistics include the filled values, as an imputer followed by a scaler.
    let filled: Vec<f64> = match fill {
        Some(fill) => present
            .iter()
            .copied()
            .chain(std::iter::repeat_n(fill, missing))
            .collect(),
        None => present,
    };
    let (center, scale) = match choice.scale {
        Scale::Standard => {
            let mean = mean(&filled);
            let variance =
                filled.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / filled.len() as f64;
            let largest = filled.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            (mean, nonzero(variance.sqrt(), largest))
        }
        Scale::Minmax => {
            let min = filled.iter().copied().fold(f64::INFINITY, f64::min);
            let max = filled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (min, nonzero(max - min, min.abs().max(max.abs())))
        }
        Scale::None => (0.0, 1.0),
    };
    if !(center.is_finite() && scale.is_finite()) || fill.is_some_and(|f| !f.is_finite()) {
        let largest = values
            .iter()
            .filter(|v| !v.is_nan())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        return Err(DataError::Column {
            path: table_path.to_path_buf(),
            column: name.to_string(),
            problem: format!(
                "its values (up to {largest:e} in size) overflow when their {} is computed: rescale the column, or --scale none",
                if choice.scale == Scale::Minmax { "range" } else { "mean and spread" }
            ),
        });
    }
    Ok(InputColumn::Numeric {
        name: name.to_string(),
        fill,
        center,
        scale,
    })
}

/// Whether every value in `levels` is a number written with a decimal comma (`-1,57`),
/// and some has one.
fn decimal_commas(levels: &[String]) -> bool {
    levels.iter().any(|l| l.contains(','))
        && levels.iter().all(|l| {
            l.matches(',').count() <= 1
                && !l.contains('.')
                && l.replace(',', ".").parse::<f64>().is_ok()
        })
}

/// `scale`, or 1 where it is zero next to the values' size (`largest`, the largest
/// magnitude), as scikit-learn's scalers treat a constant column. An infinite or NaN
/// scale (overflow) stays, for `fit_numeric` to refuse.
pub(crate) fn nonzero(scale: f64, largest: f64) -> f64 {
    if scale <= 10.0 * f64::EPSILON * largest || scale == 0.0 {
        1.0
    } else {
        scale
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The median (NumPy's: the mean of the two middle values for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}
