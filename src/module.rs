//! The Module convention shared by every layer and by the network itself.

use std::fmt;

use ndarray::{Array, ArrayView2, Dimension};

use crate::float::Float;

/// Whether a parameter is a weight matrix (subject to weight decay) or a bias vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ParameterKind {
    /// A weight matrix, `(out, in)`.
    Weight,
    /// A bias vector, `(out)`.
    Bias,
}

/// Which parameter of a model: the position of its layer (activations counted) and
/// weight or bias. Written as PyTorch's `state_dict` names it: `0.weight`, `2.bias` ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParameterKey {
    /// The layer's position in the model (0 for a lone layer).
    pub layer: usize,
    /// Weight or bias.
    pub kind: ParameterKind,
}

impl fmt::Display for ParameterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ParameterKind::Weight => "weight",
            ParameterKind::Bias => "bias",
        };
        write!(f, "{}.{kind}", self.layer)
    }
}

/// One trainable parameter and the gradient the last `backward` stored for it, both as
/// flat slices in the same (row-major) order.
pub struct Parameter<'a, F> {
    /// Which parameter this is: optimizers keep their state under this key.
    pub key: ParameterKey,
    /// The values, updated in place by an optimizer.
    pub value: &'a mut [F],
    /// dL/d(value) from the last `backward`.
    pub grad: &'a [F],
}

impl<'a, F> Parameter<'a, F> {
    /// The parameter `kind` of a lone layer (position 0; a network renumbers it) from
    /// the layer's own `value` and `grad` arrays, which layers keep in standard layout.
    ///
    /// # Panics
    /// If either array is not in standard layout (a layer's invariant, never the user's).
    pub(crate) fn of_layer<D: Dimension>(
        kind: ParameterKind,
        value: &'a mut Array<F, D>,
        grad: &'a Array<F, D>,
    ) -> Self {
        Self {
            key: ParameterKey { layer: 0, kind },
            // Cannot fail: layers build their parameters in standard layout and reach
            // them only through views, which cannot change it.
            value: value.as_slice_mut().expect("standard layout"),
            grad: grad.as_slice().expect("standard layout"),
        }
    }
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
