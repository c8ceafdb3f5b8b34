//! Per-class precision, recall and F1, their macro averages, and the confusion matrix.

use ndarray::{Array2, ArrayView1};
use serde::Serialize;

use crate::limits::{check_memory, TooLarge};

/// Precision, recall and F1 of one class.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ClassMetrics {
    /// Of the rows predicted as this class, the fraction that are (0 when none is).
    pub precision: f64,
    /// Of the rows of this class, the fraction predicted as it (0 when there is none).
    pub recall: f64,
    /// The harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Rows of this class.
    pub support: usize,
}

/// How a classifier did on a set of rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassificationReport {
    /// `(classes, classes)`: rows are true labels, columns predictions.
    pub confusion: Vec<Vec<usize>>,
    /// Per class, in order.
    pub classes: Vec<ClassMetrics>,
    /// Unweighted means over the classes.
    pub macro_average: ClassMetrics,
    /// Fraction of rows predicted right.
    pub accuracy: f64,
}

impl ClassificationReport {
    /// The memory one cell of a report's confusion matrix takes while it is built and
    /// kept: the count in the `Array2` it is tallied in, and in the rows it is kept as.
    pub const BYTES_PER_CELL: u64 = 16;

    /// Checks, before `reports` reports are built, that their `classes x classes`
    /// confusion matrices fit in the memory this process may still use, with
    /// `printed_per_cell` bytes a cell for what is made of them (a text or JSON form, a
    /// heat map).
    pub fn check_size(
        classes: usize,
        reports: usize,
        printed_per_cell: u64,
    ) -> Result<(), TooLarge> {
        let per_cell = (reports as u64)
            .checked_mul(Self::BYTES_PER_CELL)
            .and_then(|bytes| bytes.checked_add(printed_per_cell));
        let bytes = (classes as u64)
            .checked_mul(classes as u64)
            .zip(per_cell)
            .and_then(|(cells, per_cell)| cells.checked_mul(per_cell));
        check_memory(format!("a {classes} x {classes} confusion matrix"), bytes).map(drop)
    }

    /// The report for `labels` against `predictions` (both `(rows)`, classes
    /// `0..classes`; out-of-range values are not counted).
    pub fn new(
        labels: ArrayView1<'_, usize>,
        predictions: ArrayView1<'_, usize>,
        classes: usize,
    ) -> Self {
        let mut confusion = Array2::<usize>::zeros((classes, classes));
        for (&label, &prediction) in labels.iter().zip(predictions) {
            if label < classes && prediction < classes {
                confusion[[label, prediction]] += 1;
            }
        }
        let ratio = |numerator: usize, denominator: usize| {
            if denominator == 0 {
                0.0
            } else {
                numerator as f64 / denominator as f64
            }
        };
        let metrics: Vec<ClassMetrics> = (0..classes)
            .map(|class| {
                let true_positive = confusion[[class, class]];
                let predicted = confusion.column(class).sum();
                let support = confusion.row(class).sum();
                let precision = ratio(true_positive, predicted);
                let recall = ratio(true_positive, support);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let mean = |value: fn(&ClassMetrics) -> f64| {
            metrics.iter().map(value).sum::<f64>() / classes.max(1) as f64
        };
        let macro_average = ClassMetrics {
            precision: mean(|m| m.precision),
            recall: mean(|m| m.recall),
            f1: mean(|m| m.f1),
            support: labels.len(),
        };
        let correct: usize = (0..classes).map(|c| confusion[[c, c]]).sum();
        Self {
            confusion: confusion
                .rows()
                .into_iter()
                .map(|row| row.to_vec())
                .collect(),
            classes: metrics,
            macro_average,
            accuracy: ratio(correct, labels.len()),
        }
    }
}
