//! What the network's outputs are trained toward: classes (softmax cross-entropy on the
//! logits, against the labels) or values (mean squared error of the one output, against
//! the standardised regression targets).

use ndarray::{ArrayView1, ArrayView2};

use crate::buffer::Buffer;
use crate::data::{Dataset, Rows};
use crate::float::Float;
use crate::loss::{MeanSquaredError, SoftmaxCrossEntropy};

/// The loss of a run, with its buffers.
pub(crate) enum Objective<F> {
    /// Classification.
    Classes(SoftmaxCrossEntropy<F>),
    /// Regression: the loss, and the batch's targets `(batch, 1)`.
    Values {
        loss: MeanSquaredError<F>,
        target: Buffer<F>,
    },
}

impl<F: Float> Objective<F> {
    /// The objective `dataset` asks for: values when it has regression targets.
    pub(crate) fn for_dataset(dataset: &Dataset<F>) -> Self {
        match dataset.values {
            Some(_) => Objective::Values {
                loss: MeanSquaredError::new(),
                target: Buffer::new(),
            },
            None => Objective::Classes(SoftmaxCrossEntropy::new()),
        }
    }

    /// The batch's mean loss of `outputs: (batch, out)` for the training rows `rows`
    /// (whose labels are `labels`); keeps what [`Objective::backward`] needs.
    pub(crate) fn forward(
        &mut self,
        outputs: ArrayView2<'_, F>,
        labels: ArrayView1<'_, usize>,
        rows: &Rows<'_>,
        dataset: &Dataset<F>,
    ) -> F {
        match self {
            Objective::Classes(loss) => loss.forward(outputs, labels),
            Objective::Values { loss, target } => {
                // Present: `for_dataset` chose values because they are there.
                let values = &dataset.values.as_ref().expect("regression targets").train;
                let mut batch = target.resize(rows.len(), 1);
                let mut fill = |position: usize, row: usize| {
                    batch[[position, 0]] = F::from_f64(values[row]);
                };
                match rows {
                    Rows::Range(range) => range.clone().enumerate().for_each(|(i, r)| fill(i, r)),
                    Rows::Indices(indices) => {
                        indices.iter().enumerate().for_each(|(i, &r)| fill(i, r))
                    }
                }
                loss.forward(outputs, target.view())
            }
        }
    }

    /// The gradient of the last [`Objective::forward`]'s loss with respect to its
    /// outputs, `(batch, out)`.
    pub(crate) fn backward(&mut self) -> ArrayView2<'_, F> {
        match self {
            Objective::Classes(loss) => loss.backward(),
            Objective::Values { loss, .. } => loss.backward(),
        }
    }
}
