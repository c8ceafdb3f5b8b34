//! The output layer of scikit-learn's MLPs and its loss (`out_activation_`): softmax with
//! categorical cross-entropy for multiclass targets, the logistic function with binary
//! cross-entropy for binary and multilabel targets, the identity with half the squared
//! error for regression, the exponential with the Poisson deviance for counts.
//!
//! Shapes: logits, outputs, targets and `delta`: `(batch, outputs)`. A classifier's
//! targets are scikit-learn's label-indicator matrix (`LabelBinarizer`): one column of
//! 0/1 for two classes, one-hot rows for more, 0/1 columns for multilabel.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2};

use crate::float::Float;
use crate::layers::ActivationKind;
use crate::math::argmax;

/// The output activation and the loss that goes with it (`delta = outputs - targets`
/// for each: every pair is canonical).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// `softmax`, categorical cross-entropy (scikit-learn's `log_loss`).
    Softmax,
    /// `logistic` per column, binary cross-entropy (`binary_log_loss`).
    Logistic,
    /// `identity`, half the mean squared error (`squared_error`, for `MLPRegressor`).
    Identity,
    /// `exp`, the Poisson deviance (`MLPRegressor(loss='poisson')`).
    Exp,
}

impl Output {
    /// scikit-learn's name for the activation (`out_activation_`).
    pub fn name(self) -> &'static str {
        match self {
            Output::Softmax => "softmax",
            Output::Logistic => "logistic",
            Output::Identity => "identity",
            Output::Exp => "exp",
        }
    }

    /// Turns logits into probabilities in place, row by row: softmax as scikit-learn
    /// computes it (`exp(z - max z) / sum`), or the logistic function.
    pub fn apply<F: Float>(self, mut values: ArrayViewMut2<'_, F>) {
        match self {
            Output::Softmax => {
                for mut row in values.rows_mut() {
                    let max = row.iter().copied().fold(F::neg_infinity(), F::max);
                    row.mapv_inplace(|z| (z - max).exp());
                    let sum = row.sum();
                    row.mapv_inplace(|e| e / sum);
                }
            }
            Output::Logistic => values.mapv_inplace(|z| ActivationKind::Sigmoid.value(z)),
            Output::Identity => {}
            Output::Exp => values.mapv_inplace(F::exp),
        }
    }

    /// The batch's mean loss, `-(1/batch) sum y log p` (softmax) or `-(1/batch) sum (y
    /// log p + (1 - y) log(1 - p))` (logistic), with `p` clipped to `[eps, 1 - eps]` and
    /// `0 log 0 = 0`, as scikit-learn's `log_loss` and `binary_log_loss`; `(1 / (2 batch
    /// outputs)) sum (y - p)^2` (identity, `squared_loss`); `(1/batch) sum (y log(y / p) -
    /// y + p)` (exp, `poisson_loss`: summed over the outputs, not averaged). With
    /// `weights`, the mean over rows is weighted (`np.average(..., weights=sample_weight)`).
    /// Summed in f64.
    pub fn loss<F: Float>(
        self,
        outputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
    ) -> f64 {
        let eps = F::epsilon();
        let high = F::one() - eps;
        // As NumPy's `clip` and SciPy's `xlogy`: NaN stays NaN (a diverged fit's loss
        // is NaN, as scikit-learn's).
        let clip = |p: F| {
            if p < eps {
                eps
            } else if p > high {
                high
            } else {
                p
            }
        };
        // In f64 from the model's values, as NumPy computes it from scikit-learn's
        // float64 or bool targets.
        let xlogy = |x: f64, y: f64| {
            if x == 0.0 && !y.is_nan() {
                0.0
            } else {
                x * y.ln()
            }
        };
        let row_loss = |p: ArrayView1<'_, F>, y: ArrayView1<'_, F>| -> f64 {
            let terms = p.iter().zip(y);
            match self {
                Output::Softmax => -terms
                    .map(|(&p, &y)| xlogy(y.to_f64(), clip(p).to_f64()))
                    .sum::<f64>(),
                Output::Logistic => -terms
                    .map(|(&p, &y)| {
                        let p = clip(p);
                        let y = y.to_f64();
                        xlogy(y, p.to_f64()) + xlogy(1.0 - y, (F::one() - p).to_f64())
                    })
                    .sum::<f64>(),
                Output::Identity => {
                    let squares: f64 = terms.map(|(&p, &y)| (y - p).to_f64().powi(2)).sum();
                    0.5 * squares / p.len().max(1) as f64
                }
                Output::Exp => terms
                    .map(|(&p, &y)| {
                        let (p, y) = (p.to_f64(), y.to_f64());
                        xlogy(y, y / p) - y + p
                    })
                    .sum::<f64>(),
            }
        };
        weighted_mean(outputs, targets, weights, row_loss)
    }

    /// scikit-learn's `score` of these outputs: for a classifier the accuracy, a row
    /// counting when its prediction matches (the argmax for softmax, NumPy's: the first
    /// NaN if there is one; every column's `p > 0.5` for logistic outputs, so the whole
    /// row for multilabel, and NaN is not above it); for a regressor the
    /// coefficient of determination R^2, averaged over the outputs (an output whose
    /// targets are constant scores 1 if predicted exactly, else 0, as `r2_score`). Rows
    /// count by their `weights`, when given.
    pub fn score<F: Float>(
        self,
        outputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
    ) -> f64 {
        let half = F::from_f64(0.5);
        let hit = |matches: bool| if matches { 1.0 } else { 0.0 };
        match self {
            Output::Softmax => weighted_mean(outputs, targets, weights, |p, y| {
                hit(numpy_argmax(p) == argmax(y.iter().copied()))
            }),
            Output::Logistic => weighted_mean(outputs, targets, weights, |p, y| {
                hit(p.iter().zip(y).all(|(&p, &y)| (p > half) == (y > half)))
            }),
            Output::Identity | Output::Exp => {
                let columns = outputs.ncols().max(1) as f64;
                let total: f64 = outputs
                    .columns()
                    .into_iter()
                    .zip(targets.columns())
                    .map(|(p, y)| r2(p, y, weights))
                    .sum();
                total / columns
            }
        }
    }
}

/// `np.argmax`: the first maximum, or the first NaN if there is one.
fn numpy_argmax<F: Float>(values: ArrayView1<'_, F>) -> usize {
    match values.iter().position(|v| v.is_nan()) {
        Some(nan) => nan,
        None => argmax(values.iter().copied()),
    }
}

/// `sum_i w_i f(row_i) / sum_i w_i` over the rows of `outputs` and `targets` (plain mean
/// without weights), in f64.
fn weighted_mean<F: Float>(
    outputs: ArrayView2<'_, F>,
    targets: ArrayView2<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
    f: impl Fn(ArrayView1<'_, F>, ArrayView1<'_, F>) -> f64,
) -> f64 {
    let rows = outputs.rows().into_iter().zip(targets.rows());
    match weights {
        None => rows.map(|(p, y)| f(p, y)).sum::<f64>() / outputs.nrows().max(1) as f64,
        Some(weights) => {
            let total: f64 = rows
                .zip(weights)
                .map(|((p, y), &w)| w.to_f64() * f(p, y))
                .sum();
            total / weights.iter().map(|&w| w.to_f64()).sum::<f64>()
        }
    }
}

/// `1 - sum w (y - p)^2 / sum w (y - mean_w y)^2` for one output, in f64 (`w` = 1
/// without weights).
fn r2<F: Float>(
    predictions: ArrayView1<'_, F>,
    targets: ArrayView1<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
) -> f64 {
    let weight = |i: usize| weights.map_or(1.0, |w| w[i].to_f64());
    let total_weight: f64 = (0..targets.len()).map(weight).sum();
    let mean = targets
        .iter()
        .enumerate()
        .map(|(i, &y)| weight(i) * y.to_f64())
        .sum::<f64>()
        / total_weight;
    let residual: f64 = predictions
        .iter()
        .zip(targets)
        .enumerate()
        .map(|(i, (&p, &y))| weight(i) * (y.to_f64() - p.to_f64()).powi(2))
        .sum();
    let spread: f64 = targets
        .iter()
        .enumerate()
        .map(|(i, &y)| weight(i) * (y.to_f64() - mean).powi(2))
        .sum();
    match (spread == 0.0, residual == 0.0) {
        (false, _) => 1.0 - residual / spread,
        (true, true) => 1.0,
        (true, false) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn softmax_rows_sum_to_one_and_follow_the_logits() {
        let mut z = array![[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]];
        Output::Softmax.apply(z.view_mut());
        let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
        let sum: f64 = e.iter().sum();
        for (got, want) in z.row(0).iter().zip(e.iter().map(|e| e / sum)) {
            assert!((got - want).abs() < 1e-15);
        }
        assert_eq!(z.row(1).to_vec(), vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn losses_clip_like_scikit_learn() {
        // A certain wrong answer costs -log(eps), not infinity.
        let p = array![[0.0, 1.0]];
        let y = array![[1.0, 0.0]];
        let loss = Output::Softmax.loss(p.view(), y.view(), None);
        assert!((loss + f64::EPSILON.ln()).abs() < 1e-12, "{loss}");
        // Binary: -(log 0.8 + log(1 - 0.3)) / 2 over two rows.
        let p = array![[0.8], [0.3]];
        let y = array![[1.0], [0.0]];
        let want = -(0.8f64.ln() + 0.7f64.ln()) / 2.0;
        assert!((Output::Logistic.loss(p.view(), y.view(), None) - want).abs() < 1e-15);
    }

    #[test]
    fn scores_use_the_argmax_every_threshold_or_r2() {
        let p = array![[0.2, 0.7, 0.1], [0.5, 0.4, 0.1]];
        let y = array![[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]];
        assert_eq!(Output::Softmax.score(p.view(), y.view(), None), 0.5);
        let p = array![[0.6, 0.4], [0.6, 0.6], [0.5, 0.1], [0.9, 0.1]];
        let y = array![[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]];
        // 0.5 is not above the threshold: the third row predicts [0, 0].
        assert_eq!(Output::Logistic.score(p.view(), y.view(), None), 0.5);
        // R^2: column 0 has residual 0.5 against a spread of 2 (0.75); column 1 is
        // constant and predicted exactly (1).
        let p = array![[1.5, 3.0], [2.0, 3.0], [2.5, 3.0]];
        let y = array![[1.0, 3.0], [2.0, 3.0], [3.0, 3.0]];
        assert!((Output::Identity.score(p.view(), y.view(), None) - 0.875).abs() < 1e-15);
        // Half the mean squared error over rows and outputs: (0.25 + 0.25) / 6 / 2.
        assert!((Output::Identity.loss(p.view(), y.view(), None) - 0.5 / 12.0).abs() < 1e-15);
    }
}
