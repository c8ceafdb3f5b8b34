//! The Module convention shared by every layer and by the network itself.

use ndarray::ArrayView2;

use crate::Float;

/// Whether a parameter is a weight matrix (subject to weight decay) or a bias vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterKind {
    /// A weight matrix, `(out, in)`.
    Weight,
    /// A bias vector, `(out)`.
    Bias,
}

/// One trainable parameter and the gradient the last `backward` stored for it, both as
/// flat slices in the same (row-major) order.
pub struct Parameter<'a, F> {
    /// Weight or bias.
    pub kind: ParameterKind,
    /// The values, updated in place by an optimizer.
    pub value: &'a mut [F],
    /// dL/d(value) from the last `backward`.
    pub gradient: &'a [F],
}

/// A differentiable layer in the PyTorch-like convention of the assignment.
///
/// Batches are rows: an input is `(batch, in_features)`, an output `(batch, out_features)`.
/// `forward` keeps what `backward` needs; `backward` takes dL/d(output) of the **last**
/// `forward`, **overwrites** (never accumulates) the parameter gradients stored on the
/// layer, and returns dL/d(input). Both return views of buffers the layer owns, so a
/// training loop allocates nothing once the buffers have their size.
pub trait Module<F: Float> {
    /// `(batch, in) -> (batch, out)`.
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F>;

    /// `(batch, out) -> (batch, in)`: dL/d(output) to dL/d(input).
    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F>;

    /// Calls `visitor` once per trainable parameter, in a fixed order.
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        let _ = visitor;
    }
}
