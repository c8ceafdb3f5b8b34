//! Loss, accuracy and predictions of a model on a whole data set, in chunks of rows.

use ndarray::{s, Array1, ArrayView1};

use crate::data::{Features, Rows};
use crate::float::Float;
use crate::loss::SoftmaxCrossEntropy;
use crate::math::argmax;
use crate::network::MultiLayerPerceptron;

use super::history::Evaluation;

/// Rows per forward pass when evaluating: large enough for efficient GEMMs, small
/// enough that the activations stay a few megabytes.
pub const EVAL_CHUNK_ROWS: usize = 1000;

/// Mean cross-entropy, accuracy and the predicted classes of `model` on `x: (rows, in)`
/// with `labels: (rows)`, computed in chunks of [`EVAL_CHUNK_ROWS`] rows.
pub fn evaluate<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    x: &Features<F>,
    labels: ArrayView1<'_, usize>,
) -> (Evaluation, Array1<usize>) {
    let mut evaluator = Evaluator::new();
    let evaluation = evaluator.evaluate(model, x, labels);
    (evaluation, evaluator.predictions)
}

/// The predicted class of every row of `x: (rows, in)`, in chunks of
/// [`EVAL_CHUNK_ROWS`] rows.
pub fn predict<F: Float>(model: &mut MultiLayerPerceptron<F>, x: &Features<F>) -> Array1<usize> {
    let mut predictions = Array1::zeros(x.nrows());
    for_each_chunk(model, x, |range, logits| {
        for (prediction, row) in predictions
            .slice_mut(s![range])
            .iter_mut()
            .zip(logits.rows())
        {
            *prediction = argmax(row.iter().copied());
        }
    });
    predictions
}

/// Runs `model` over `x` in chunks of [`EVAL_CHUNK_ROWS`] rows, handing each chunk's
/// row range and logits `(chunk, classes)` to `visit`.
fn for_each_chunk<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    x: &Features<F>,
    mut visit: impl FnMut(std::ops::Range<usize>, ndarray::ArrayView2<'_, F>),
) {
    let rows = x.nrows();
    for start in (0..rows).step_by(EVAL_CHUNK_ROWS) {
        let range = start..(start + EVAL_CHUNK_ROWS).min(rows);
        let chunk = Rows::Range(range.clone());
        let logits = model.forward_with(chunk.len(), |input| x.copy_rows_into(&chunk, input));
        visit(range, logits);
    }
}

/// Evaluation with buffers kept between calls: after the first call on a data set,
/// evaluating it again allocates nothing.
#[derive(Debug, Default)]
pub struct Evaluator<F> {
    loss: SoftmaxCrossEntropy<F>,
    predictions: Array1<usize>,
}

impl<F: Float> Evaluator<F> {
    /// An evaluator with empty buffers.
    pub fn new() -> Self {
        Self {
            loss: SoftmaxCrossEntropy::new(),
            predictions: Array1::zeros(0),
        }
    }

    /// Loss and accuracy of `model` on `x: (rows, in)`, `labels: (rows)`; the predicted
    /// classes are kept (see [`Evaluator::predictions`]). Each chunk's mean loss is
    /// weighted by its rows, so the result is the mean over all rows.
    pub fn evaluate(
        &mut self,
        model: &mut MultiLayerPerceptron<F>,
        x: &Features<F>,
        labels: ArrayView1<'_, usize>,
    ) -> Evaluation {
        let rows = x.nrows();
        if self.predictions.len() != rows {
            self.predictions = Array1::zeros(rows);
        }
        let (mut total_loss, mut correct) = (0.0, 0usize);
        let (loss, predictions) = (&mut self.loss, &mut self.predictions);
        for_each_chunk(model, x, |range, logits| {
            let chunk_labels = labels.slice(s![range.clone()]);
            for (row, (prediction, &label)) in logits.rows().into_iter().zip(
                predictions
                    .slice_mut(s![range.clone()])
                    .into_iter()
                    .zip(chunk_labels),
            ) {
                *prediction = argmax(row.iter().copied());
                correct += usize::from(*prediction == label);
            }
            total_loss += loss.forward(logits, chunk_labels).to_f64() * range.len() as f64;
        });
        let count = rows.max(1) as f64;
        Evaluation {
            loss: total_loss / count,
            accuracy: correct as f64 / count,
        }
    }

    /// The predicted class of each row of the last evaluation.
    pub fn predictions(&self) -> ArrayView1<'_, usize> {
        self.predictions.view()
    }

    /// The predicted classes of the last evaluation, taken out.
    pub fn into_predictions(self) -> Array1<usize> {
        self.predictions
    }
}
