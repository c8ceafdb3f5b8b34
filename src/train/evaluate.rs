//! Loss, accuracy and predictions of a model on a whole data set, in chunks of rows.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayViewMut1, Axis};

use crate::data::{Features, Rows};
use crate::float::Float;
use crate::loss::SoftmaxCrossEntropy;
use crate::math::argmax;
use crate::network::{MultiLayerPerceptron, Scratch};
use crate::threads::{self, with_one_blas_thread};

use super::history::{Evaluation, RegressionMetrics};

/// Rows per forward pass when evaluating: large enough for efficient GEMMs, small
/// enough that a chunk's input and activations stay in a core's cache.
pub const EVAL_CHUNK_ROWS: usize = 256;

/// Mean cross-entropy, accuracy and the predicted classes of `model` on `x: (rows, in)`
/// with `labels: (rows)`, computed in chunks of [`EVAL_CHUNK_ROWS`] rows.
pub fn evaluate<F: Float>(
    model: &MultiLayerPerceptron<F>,
    x: &Features<F>,
    labels: ArrayView1<'_, usize>,
) -> (Evaluation, Array1<usize>) {
    let mut evaluator = Evaluator::new();
    let evaluation = evaluator.evaluate(model, x, labels);
    (evaluation, evaluator.predictions)
}

/// The predicted class of every row of `x: (rows, in)`, in chunks of
/// [`EVAL_CHUNK_ROWS`] rows.
pub fn predict<F: Float>(model: &MultiLayerPerceptron<F>, x: &Features<F>) -> Array1<usize> {
    let mut evaluator = Evaluator::new();
    evaluator.run(model, x, None);
    evaluator.predictions
}

/// The outputs `(rows, out)` of `model` on every row of `x: (rows, in)` (the logits, or
/// a regression model's standardised values), in chunks of [`EVAL_CHUNK_ROWS`] rows on
/// the calling thread.
pub fn outputs<F: Float>(model: &MultiLayerPerceptron<F>, x: &Features<F>) -> Array2<F> {
    let rows = x.nrows();
    let mut outputs = Array2::<F>::zeros((rows, model.out_features()));
    let mut scratch = Scratch::default();
    for start in (0..rows).step_by(EVAL_CHUNK_ROWS) {
        let end = (start + EVAL_CHUNK_ROWS).min(rows);
        let chunk = model.infer(
            end - start,
            |input| x.copy_rows_into(&Rows::Range(start..end), input),
            &mut scratch,
        );
        outputs.slice_mut(s![start..end, ..]).assign(&chunk);
    }
    outputs
}

/// A regression model's evaluation on `x: (rows, in)` with standardised `targets:
/// (rows)`: the mean squared error in standardised units (the training loss), and RMSE,
/// MAE and R² in the target's units (`value = standardised * scale + center`: errors
/// scale by `scale`).
///
/// # Panics
/// If `targets` does not have one entry per row of `x`, or the model more than one
/// output.
#[track_caller]
pub fn evaluate_regression<F: Float>(
    model: &MultiLayerPerceptron<F>,
    x: &Features<F>,
    targets: ArrayView1<'_, f64>,
    scale: f64,
) -> Evaluation {
    assert_eq!(
        targets.len(),
        x.nrows(),
        "evaluate_regression: one target per row is needed"
    );
    assert_eq!(
        model.out_features(),
        1,
        "evaluate_regression: one output is needed"
    );
    let predicted = outputs(model, x);
    let rows = targets.len().max(1) as f64;
    let (mut squared, mut absolute) = (0.0, 0.0);
    for (p, &t) in predicted.iter().zip(targets) {
        let error = <F as Float>::to_f64(*p) - t;
        squared += error * error;
        absolute += error.abs();
    }
    let mean = targets.sum() / rows;
    let total: f64 = targets.iter().map(|t| (t - mean) * (t - mean)).sum();
    // R² is the same in either unit (both sums scale by scale²); a constant target
    // scores 1 if predicted exactly, else 0, as scikit-learn's r2_score.
    let r2 = match (total > 0.0, squared > 0.0) {
        (true, _) => 1.0 - squared / total,
        (false, false) => 1.0,
        (false, true) => 0.0,
    };
    Evaluation {
        loss: squared / rows,
        accuracy: 0.0,
        regression: Some(RegressionMetrics {
            rmse: (squared / rows).sqrt() * scale,
            mae: absolute / rows * scale,
            r2,
        }),
    }
}

/// The class probabilities `(rows, classes)` of every row of `x: (rows, in)`: the
/// softmax of the logits (as [`SoftmaxCrossEntropy`] computes it, in f64), in chunks of
/// [`EVAL_CHUNK_ROWS`] rows.
pub fn predict_proba<F: Float>(model: &MultiLayerPerceptron<F>, x: &Features<F>) -> Array2<f64> {
    let rows = x.nrows();
    let mut probabilities = Array2::<f64>::zeros((rows, model.out_features()));
    let mut scratch = Scratch::default();
    for start in (0..rows).step_by(EVAL_CHUNK_ROWS) {
        let end = (start + EVAL_CHUNK_ROWS).min(rows);
        let logits = with_one_blas_thread(|| {
            model
                .infer(
                    end - start,
                    |input| x.copy_rows_into(&Rows::Range(start..end), input),
                    &mut scratch,
                )
                .to_owned()
        });
        for (i, row) in logits.rows().into_iter().enumerate() {
            let max = row
                .iter()
                .fold(f64::NEG_INFINITY, |m, v| m.max(<F as Float>::to_f64(*v)));
            let sum: f64 = row
                .iter()
                .map(|v| (<F as Float>::to_f64(*v) - max).exp())
                .sum();
            for (k, v) in row.iter().enumerate() {
                probabilities[[start + i, k]] = (<F as Float>::to_f64(*v) - max).exp() / sum;
            }
        }
    }
    probabilities
}

/// Evaluation with buffers kept between calls: after the first call on a data set,
/// evaluating it again allocates nothing.
///
/// The chunks are shared out between the cores, each core running its chunks through
/// the whole network with one-thread GEMMs (converting 8-bit pixels into its own input
/// buffer on the way): no core waits for another until the end. Each chunk's results are
/// kept and summed in chunk order, so the loss, the accuracy and the predictions do not
/// depend on the number of threads.
#[derive(Debug, Default)]
pub struct Evaluator<F> {
    parts: Vec<Part<F>>,
    chunks: Vec<ChunkResult>,
    predictions: Array1<usize>,
}

/// One core's buffers.
#[derive(Debug, Default)]
struct Part<F> {
    scratch: Scratch<F>,
    loss: SoftmaxCrossEntropy<F>,
}

/// One chunk's summed loss (when labels are given) and correct predictions.
#[derive(Clone, Copy, Debug, Default)]
struct ChunkResult {
    loss: f64,
    correct: usize,
}

/// What a part reads: the model, the features and the labels (if any).
#[derive(Clone, Copy)]
struct Inputs<'a, F> {
    model: &'a MultiLayerPerceptron<F>,
    x: &'a Features<F>,
    labels: Option<ArrayView1<'a, usize>>,
}

impl<F: Float> Evaluator<F> {
    /// An evaluator with empty buffers.
    pub fn new() -> Self {
        Self {
            parts: Vec::new(),
            chunks: Vec::new(),
            predictions: Array1::zeros(0),
        }
    }

    /// Loss and accuracy of `model` on `x: (rows, in)`, `labels: (rows)`; the predicted
    /// classes are kept (see [`Evaluator::predictions`]). Each chunk's mean loss is
    /// weighted by its rows, so the result is the mean over all rows.
    ///
    /// # Panics
    /// If `labels` does not have one entry per row of `x`.
    #[track_caller]
    pub fn evaluate(
        &mut self,
        model: &MultiLayerPerceptron<F>,
        x: &Features<F>,
        labels: ArrayView1<'_, usize>,
    ) -> Evaluation {
        assert_eq!(
            labels.len(),
            x.nrows(),
            "Evaluator: one label per row is needed"
        );
        self.run(model, x, Some(labels));
        let (total_loss, correct) = self.chunks.iter().fold((0.0, 0), |(loss, correct), chunk| {
            (loss + chunk.loss, correct + chunk.correct)
        });
        let count = x.nrows().max(1) as f64;
        Evaluation {
            loss: total_loss / count,
            accuracy: correct as f64 / count,
            regression: None,
        }
    }

    /// Runs every chunk, filling `predictions` and (with labels) the chunk results: on
    /// the pool the caller runs on (a training run's), or else on nabla's pool of
    /// [`threads::budget`] threads.
    fn run(
        &mut self,
        model: &MultiLayerPerceptron<F>,
        x: &Features<F>,
        labels: Option<ArrayView1<'_, usize>>,
    ) {
        if rayon::current_thread_index().is_none() && x.nrows() > EVAL_CHUNK_ROWS {
            let threads = threads::budget().threads;
            threads::on_pool(threads, || self.run_here(model, x, labels));
        } else {
            self.run_here(model, x, labels);
        }
    }

    /// [`Evaluator::run`] on the calling thread, sharing the chunks with its pool.
    fn run_here(
        &mut self,
        model: &MultiLayerPerceptron<F>,
        x: &Features<F>,
        labels: Option<ArrayView1<'_, usize>>,
    ) {
        let rows = x.nrows();
        let chunks = rows.div_ceil(EVAL_CHUNK_ROWS);
        if self.predictions.len() != rows {
            self.predictions = Array1::zeros(rows);
        }
        self.chunks.clear();
        self.chunks.resize(chunks, ChunkResult::default());
        let parts = threads::parallelism().min(chunks).max(1);
        if self.parts.len() < parts {
            self.parts.resize_with(parts, Part::default);
        }
        let inputs = Inputs { model, x, labels };
        let (parts, results, predictions) = (
            &mut self.parts[..parts],
            &mut self.chunks[..],
            self.predictions.view_mut(),
        );
        if parts.len() == 1 {
            run_chunks(inputs, &mut parts[0], 0, results, predictions);
        } else {
            // One-thread GEMMs: the parallelism is across chunks.
            with_one_blas_thread(|| share_out(inputs, parts, 0, results, predictions));
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

/// Shares chunks `first..first + results.len()` between `parts` (contiguous runs of
/// chunks, halving recursively with `rayon::join`; nothing is allocated).
fn share_out<F: Float>(
    inputs: Inputs<'_, F>,
    parts: &mut [Part<F>],
    first: usize,
    results: &mut [ChunkResult],
    predictions: ArrayViewMut1<'_, usize>,
) {
    if parts.len() == 1 {
        run_chunks(inputs, &mut parts[0], first, results, predictions);
        return;
    }
    let left_parts = parts.len() / 2;
    let left_chunks = results.len() * left_parts / parts.len();
    let left_rows = (left_chunks * EVAL_CHUNK_ROWS).min(predictions.len());
    let (parts_left, parts_right) = parts.split_at_mut(left_parts);
    let (results_left, results_right) = results.split_at_mut(left_chunks);
    let (predictions_left, predictions_right) = predictions.split_at(Axis(0), left_rows);
    rayon::join(
        || share_out(inputs, parts_left, first, results_left, predictions_left),
        || {
            share_out(
                inputs,
                parts_right,
                first + left_chunks,
                results_right,
                predictions_right,
            )
        },
    );
}

/// Runs chunks `first..first + results.len()` on this thread; `predictions` holds their
/// rows.
fn run_chunks<F: Float>(
    inputs: Inputs<'_, F>,
    part: &mut Part<F>,
    first: usize,
    results: &mut [ChunkResult],
    mut predictions: ArrayViewMut1<'_, usize>,
) {
    let rows = inputs.x.nrows();
    let offset = first * EVAL_CHUNK_ROWS;
    for (index, result) in results.iter_mut().enumerate() {
        let start = (first + index) * EVAL_CHUNK_ROWS;
        let range = start..(start + EVAL_CHUNK_ROWS).min(rows);
        let chunk = Rows::Range(range.clone());
        let logits = inputs.model.infer(
            range.len(),
            |input| inputs.x.copy_rows_into(&chunk, input),
            &mut part.scratch,
        );
        let mut chunk_predictions =
            predictions.slice_mut(s![range.start - offset..range.end - offset]);
        for (prediction, row) in chunk_predictions.iter_mut().zip(logits.rows()) {
            *prediction = argmax(row.iter().copied());
        }
        if let Some(labels) = inputs.labels {
            let chunk_labels = labels.slice(s![range.clone()]);
            result.correct = chunk_predictions
                .iter()
                .zip(chunk_labels)
                .filter(|(prediction, label)| prediction == label)
                .count();
            result.loss = part.loss.forward(logits, chunk_labels).to_f64() * range.len() as f64;
        }
    }
}
