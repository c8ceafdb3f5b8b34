//! Losses over a batch: the fused softmax + cross-entropy for classification and the
//! mean squared error for regression.
//!
//! Both take `prediction: (batch, classes)`, return the batch **mean** of the per-row
//! loss from `forward`, and return dL/d(prediction) `(batch, classes)` from `backward`.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, Axis, Zip};

use crate::buffer::Buffer;
use crate::float::Float;
use crate::threads::{worth_parallel, TRANSCENDENTAL_ELEMENT};

/// Softmax over each row followed by the mean cross-entropy with integer class labels.
///
/// `loss = (1/N) * sum_i (logsumexp(z_i) - z_i[y_i])`, computed with the row maximum
/// subtracted before `exp`, so logits of any magnitude give a finite loss; the fused
/// gradient is `(softmax(z) - onehot(y)) / N`.
#[derive(Clone, Debug, Default)]
pub struct SoftmaxCrossEntropy<F> {
    probabilities: Buffer<F>,
    gradient: Buffer<F>,
    labels: Vec<usize>,
    row_losses: Vec<F>,
}

impl<F: Float> SoftmaxCrossEntropy<F> {
    /// A loss with empty buffers (sized on the first `forward`).
    pub fn new() -> Self {
        Self {
            probabilities: Buffer::new(),
            gradient: Buffer::new(),
            labels: Vec::new(),
            row_losses: Vec::new(),
        }
    }

    /// Mean cross-entropy of `logits: (batch, classes)` against `labels: (batch)`;
    /// keeps the softmax probabilities and the labels for `backward`.
    ///
    /// # Panics
    /// If the batch sizes differ or a label is not below `classes`.
    #[track_caller]
    pub fn forward(&mut self, logits: ArrayView2<'_, F>, labels: ArrayView1<'_, usize>) -> F {
        // logits: (batch, classes), labels: (batch) -> scalar
        let (batch, classes) = logits.dim();
        assert_eq!(
            labels.len(),
            batch,
            "SoftmaxCrossEntropy::forward: {} labels for {batch} rows",
            labels.len()
        );
        if let Some(&label) = labels.iter().find(|&&label| label >= classes) {
            panic!("SoftmaxCrossEntropy::forward: label {label} is not below {classes} classes");
        }
        self.labels.clear();
        self.labels.extend(labels.iter().copied());
        let mut probabilities = self.probabilities.resize(batch, classes);
        probabilities.assign(&logits);
        let row_losses = |mut row: ArrayViewMut1<'_, F>, &label: &usize| {
            softmax_cross_entropy_row(&mut row, label)
        };
        let rows = Zip::from(probabilities.axis_iter_mut(Axis(0))).and(labels);
        let total: F = if worth_parallel(batch * classes, TRANSCENDENTAL_ELEMENT) {
            // Per-row losses into a kept buffer, then summed in order: no allocation, and
            // the same total whatever the thread count.
            self.row_losses.resize(batch, F::zero());
            rows.par_map_assign_into(&mut self.row_losses[..batch], row_losses);
            self.row_losses[..batch].iter().copied().sum()
        } else {
            rows.fold(F::zero(), |acc, row, label| acc + row_losses(row, label))
        };
        total / F::from_f64(batch.max(1) as f64)
    }

    /// `(batch, classes)`: `(softmax(z) - onehot(y)) / batch` for the last `forward`.
    pub fn backward(&mut self) -> ArrayView2<'_, F> {
        let probabilities = self.probabilities.view();
        let (batch, classes) = probabilities.dim();
        let scale = F::one() / F::from_f64(batch.max(1) as f64);
        let mut gradient = self.gradient.resize(batch, classes);
        Zip::from(&mut gradient)
            .and(&probabilities)
            .for_each(|g, &p| *g = p * scale);
        for (mut row, &label) in gradient.axis_iter_mut(Axis(0)).zip(&self.labels) {
            row[label] -= scale;
        }
        self.gradient.view()
    }

    /// The softmax probabilities `(batch, classes)` of the last `forward`.
    pub fn probabilities(&self) -> ArrayView2<'_, F> {
        self.probabilities.view()
    }
}

/// Replaces a row of logits `z` by `softmax(z)` and returns `logsumexp(z) - z[label]`.
///
/// The maximum is subtracted before `exp`, and the loss is taken from the logits rather
/// than from `ln(p)`, so it stays finite even where `p[label]` underflows to zero.
fn softmax_cross_entropy_row<F: Float>(row: &mut ArrayViewMut1<'_, F>, label: usize) -> F {
    let max = row.fold(F::neg_infinity(), |m, &z| m.max(z));
    let label_logit = row[label];
    let mut sum = F::zero();
    row.mapv_inplace(|z| {
        let e = (z - max).exp();
        sum += e;
        e
    });
    let inverse = F::one() / sum;
    row.mapv_inplace(|e| e * inverse);
    (max - label_logit) + sum.ln()
}

/// Mean squared error: `(1/N) * sum_i sum_j (prediction_ij - target_ij)^2`, with
/// gradient `2 (prediction - target) / N`.
#[derive(Clone, Debug, Default)]
pub struct MeanSquaredError<F> {
    difference: Buffer<F>,
    gradient: Buffer<F>,
}

impl<F: Float> MeanSquaredError<F> {
    /// A loss with empty buffers (sized on the first `forward`).
    pub fn new() -> Self {
        Self {
            difference: Buffer::new(),
            gradient: Buffer::new(),
        }
    }

    /// The batch mean of the squared errors; keeps `prediction - target` for `backward`.
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn forward(&mut self, prediction: ArrayView2<'_, F>, target: ArrayView2<'_, F>) -> F {
        // prediction, target: (batch, outputs) -> scalar
        assert_eq!(
            prediction.dim(),
            target.dim(),
            "MeanSquaredError::forward: prediction {:?} and target {:?} differ",
            prediction.dim(),
            target.dim()
        );
        let (batch, outputs) = prediction.dim();
        let mut difference = self.difference.resize(batch, outputs);
        Zip::from(&mut difference)
            .and(&prediction)
            .and(&target)
            .for_each(|d, &p, &t| *d = p - t);
        let sum: F = difference.iter().map(|&d| d * d).sum();
        sum / F::from_f64(batch.max(1) as f64)
    }

    /// `(batch, outputs)`: `2 (prediction - target) / batch` for the last `forward`.
    pub fn backward(&mut self) -> ArrayView2<'_, F> {
        let difference = self.difference.view();
        let (batch, outputs) = difference.dim();
        let scale = F::from_f64(2.0 / batch.max(1) as f64);
        let mut gradient = self.gradient.resize(batch, outputs);
        Zip::from(&mut gradient)
            .and(&difference)
            .for_each(|g, &d| *g = d * scale);
        self.gradient.view()
    }
}
