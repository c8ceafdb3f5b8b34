//! The output layer of scikit-learn's MLPs and its loss (`out_activation_`): softmax with
//! categorical cross-entropy for multiclass targets, the logistic function with binary
//! cross-entropy for binary and multilabel targets, the identity with half the squared
//! error for regression.
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
}

impl Output {
    /// scikit-learn's name for the activation (`out_activation_`).
    pub fn name(self) -> &'static str {
        match self {
            Output::Softmax => "softmax",
            Output::Logistic => "logistic",
            Output::Identity => "identity",
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
        }
    }

    /// The batch's mean loss, `-(1/batch) sum y log p` (softmax) or `-(1/batch) sum (y
    /// log p + (1 - y) log(1 - p))` (logistic), with `p` clipped to `[eps, 1 - eps]` and
    /// `0 log 0 = 0`, as scikit-learn's `log_loss` and `binary_log_loss`; `(1 / (2 batch
    /// outputs)) sum (y - p)^2` (identity, `squared_loss`). Summed in f64.
    pub fn loss<F: Float>(
        self,
        probabilities: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
    ) -> f64 {
        if self == Output::Identity {
            let squares: f64 = probabilities
                .iter()
                .zip(targets)
                .map(|(&p, &y)| (y - p).to_f64().powi(2))
                .sum();
            return 0.5 * squares / probabilities.len().max(1) as f64;
        }
        let eps = F::epsilon();
        let high = F::one() - eps;
        let xlogy = |x: F, y: F| {
            if x == F::zero() {
                0.0
            } else {
                (x * y.ln()).to_f64()
            }
        };
        let mut total = 0.0;
        for (&p, &y) in probabilities.iter().zip(targets) {
            let p = p.max(eps).min(high);
            total += match self {
                Output::Softmax => xlogy(y, p),
                // Identity returned above.
                Output::Logistic | Output::Identity => {
                    xlogy(y, p) + xlogy(F::one() - y, F::one() - p)
                }
            };
        }
        -total / probabilities.nrows().max(1) as f64
    }

    /// scikit-learn's `score` of these outputs: for a classifier the accuracy, a row
    /// counting when its prediction matches (the argmax for softmax; every column's `p >
    /// 0.5` for logistic outputs, so the whole row for multilabel); for a regressor the
    /// coefficient of determination R^2, averaged over the outputs (an output whose
    /// targets are constant scores 1 if predicted exactly, else 0, as `r2_score`).
    pub fn score<F: Float>(self, outputs: ArrayView2<'_, F>, targets: ArrayView2<'_, F>) -> f64 {
        let rows = outputs.nrows().max(1) as f64;
        let half = F::from_f64(0.5);
        let rows_matching = |matches: &dyn Fn(ArrayView1<'_, F>, ArrayView1<'_, F>) -> bool| {
            let count = outputs
                .rows()
                .into_iter()
                .zip(targets.rows())
                .filter(|(p, y)| matches(*p, *y))
                .count();
            count as f64 / rows
        };
        match self {
            Output::Softmax => {
                rows_matching(&|p, y| argmax(p.iter().copied()) == argmax(y.iter().copied()))
            }
            Output::Logistic => {
                rows_matching(&|p, y| p.iter().zip(y).all(|(&p, &y)| (p > half) == (y > half)))
            }
            Output::Identity => {
                let columns = outputs.ncols().max(1) as f64;
                let total: f64 = outputs
                    .columns()
                    .into_iter()
                    .zip(targets.columns())
                    .map(|(p, y)| r2(p, y))
                    .sum();
                total / columns
            }
        }
    }
}

/// `1 - sum (y - p)^2 / sum (y - mean y)^2` for one output, in f64.
fn r2<F: Float>(predictions: ArrayView1<'_, F>, targets: ArrayView1<'_, F>) -> f64 {
    let mean = targets.iter().map(|&y| y.to_f64()).sum::<f64>() / targets.len().max(1) as f64;
    let residual: f64 = predictions
        .iter()
        .zip(targets)
        .map(|(&p, &y)| (y.to_f64() - p.to_f64()).powi(2))
        .sum();
    let total: f64 = targets.iter().map(|&y| (y.to_f64() - mean).powi(2)).sum();
    match (total == 0.0, residual == 0.0) {
        (false, _) => 1.0 - residual / total,
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
        let loss = Output::Softmax.loss(p.view(), y.view());
        assert!((loss + f64::EPSILON.ln()).abs() < 1e-12, "{loss}");
        // Binary: -(log 0.8 + log(1 - 0.3)) / 2 over two rows.
        let p = array![[0.8], [0.3]];
        let y = array![[1.0], [0.0]];
        let want = -(0.8f64.ln() + 0.7f64.ln()) / 2.0;
        assert!((Output::Logistic.loss(p.view(), y.view()) - want).abs() < 1e-15);
    }

    #[test]
    fn scores_use_the_argmax_every_threshold_or_r2() {
        let p = array![[0.2, 0.7, 0.1], [0.5, 0.4, 0.1]];
        let y = array![[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]];
        assert_eq!(Output::Softmax.score(p.view(), y.view()), 0.5);
        let p = array![[0.6, 0.4], [0.6, 0.6], [0.5, 0.1], [0.9, 0.1]];
        let y = array![[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]];
        // 0.5 is not above the threshold: the third row predicts [0, 0].
        assert_eq!(Output::Logistic.score(p.view(), y.view()), 0.5);
        // R^2: column 0 has residual 0.5 against a spread of 2 (0.75); column 1 is
        // constant and predicted exactly (1).
        let p = array![[1.5, 3.0], [2.0, 3.0], [2.5, 3.0]];
        let y = array![[1.0, 3.0], [2.0, 3.0], [3.0, 3.0]];
        assert!((Output::Identity.score(p.view(), y.view()) - 0.875).abs() < 1e-15);
        // Half the mean squared error over rows and outputs: (0.25 + 0.25) / 6 / 2.
        assert!((Output::Identity.loss(p.view(), y.view()) - 0.5 / 12.0).abs() < 1e-15);
    }
}
