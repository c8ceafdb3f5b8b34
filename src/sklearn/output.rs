//! The output layer of scikit-learn's classifier and its loss: softmax with categorical
//! cross-entropy for multiclass targets, the logistic function with binary
//! cross-entropy for binary and multilabel targets (`out_activation_`).
//!
//! Shapes: logits, probabilities, targets and `delta`: `(batch, outputs)`. Targets are
//! scikit-learn's label-indicator matrix (`LabelBinarizer`): one column of 0/1 for two
//! classes, one-hot rows for more, 0/1 columns for multilabel.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::float::Float;
use crate::layers::ActivationKind;
use crate::math::argmax;

/// The output activation and the loss that goes with it (`delta = probabilities -
/// targets` for both: each pair is canonical).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// `softmax`, categorical cross-entropy (scikit-learn's `log_loss`).
    Softmax,
    /// `logistic` per column, binary cross-entropy (`binary_log_loss`).
    Logistic,
}

impl Output {
    /// scikit-learn's name for the activation (`out_activation_`).
    pub fn name(self) -> &'static str {
        match self {
            Output::Softmax => "softmax",
            Output::Logistic => "logistic",
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
        }
    }

    /// The batch's mean loss, `-(1/batch) sum y log p` (softmax) or `-(1/batch) sum (y
    /// log p + (1 - y) log(1 - p))` (logistic), with `p` clipped to `[eps, 1 - eps]` and
    /// `0 log 0 = 0`, as scikit-learn's `log_loss` and `binary_log_loss`. Summed in f64.
    pub fn loss<F: Float>(
        self,
        probabilities: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
    ) -> f64 {
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
                Output::Logistic => xlogy(y, p) + xlogy(F::one() - y, F::one() - p),
            };
        }
        -total / probabilities.nrows().max(1) as f64
    }

    /// Whether each row's prediction is right, as `accuracy_score` on scikit-learn's
    /// predictions counts it: the argmax for softmax; every column's `p > 0.5` for
    /// logistic outputs (binary and multilabel: the whole row must match).
    pub fn correct_rows<F: Float>(
        self,
        probabilities: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
    ) -> usize {
        let half = F::from_f64(0.5);
        probabilities
            .rows()
            .into_iter()
            .zip(targets.rows())
            .filter(|(p, y)| match self {
                Output::Softmax => argmax(p.iter().copied()) == argmax(y.iter().copied()),
                Output::Logistic => p.iter().zip(y).all(|(&p, &y)| (p > half) == (y > half)),
            })
            .count()
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
    fn correct_rows_use_the_argmax_or_every_threshold() {
        let p = array![[0.2, 0.7, 0.1], [0.5, 0.4, 0.1]];
        let y = array![[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]];
        assert_eq!(Output::Softmax.correct_rows(p.view(), y.view()), 1);
        let p = array![[0.6, 0.4], [0.6, 0.6], [0.5, 0.1]];
        let y = array![[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]];
        // 0.5 is not above the threshold: the last row predicts [0, 0].
        assert_eq!(Output::Logistic.correct_rows(p.view(), y.view()), 1);
    }
}
