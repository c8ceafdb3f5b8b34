//! The forward pass of a network that only reads it, into buffers the caller owns: how
//! several threads evaluate one model at once, each with its own [`Scratch`].
//!
//! Shapes: input `(rows, in)`, logits `(rows, out)`. Every layer's values equal those of
//! [`Module::forward`](crate::module::Module::forward) bit for bit (the same GEMM, the
//! same elementwise formulas, applied in place).

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::buffer::Buffer;
use crate::float::Float;
use crate::layers::Layer;

use super::MultiLayerPerceptron;

/// The buffers of one thread's forward passes: the input and two alternating layer
/// outputs. They grow to the largest chunk seen and are reused after that.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch<F> {
    buffers: [Buffer<F>; 3],
}

impl<F: Float> Scratch<F> {
    /// Buffer `source` to read and buffer `target` to write (`source != target`).
    fn pair(&mut self, source: usize, target: usize) -> (&Buffer<F>, &mut Buffer<F>) {
        let [a, b, c] = &mut self.buffers;
        match (source, target) {
            (0, 1) => (a, b),
            (1, 2) => (b, c),
            (2, 1) => (c, b),
            // Cannot happen: `infer` only ever moves from the input to 1, and between 1 and 2.
            _ => unreachable!("inference buffers {source} -> {target}"),
        }
    }
}

impl<F: Float> MultiLayerPerceptron<F> {
    /// The logits `(rows, out)` of the `(rows, in)` input that `fill_input` writes into
    /// `scratch`, computed without changing the model (so `&self`: threads with their own
    /// scratch may run it at once). Activations are applied in place.
    pub(crate) fn infer<'s>(
        &self,
        rows: usize,
        fill_input: impl FnOnce(ArrayViewMut2<'_, F>),
        scratch: &'s mut Scratch<F>,
    ) -> ArrayView2<'s, F> {
        fill_input(scratch.buffers[0].resize(rows, self.in_features()));
        let mut current = 0;
        for layer in &self.layers {
            match layer {
                Layer::Linear(linear) => {
                    let next = if current == 1 { 2 } else { 1 };
                    let (source, target) = scratch.pair(current, next);
                    linear.forward_into(source.view(), target.resize(rows, linear.out_features()));
                    current = next;
                }
                Layer::Activation(activation) => activation
                    .kind()
                    .apply_in_place(scratch.buffers[current].view_mut()),
            }
        }
        scratch.buffers[current].view()
    }
}
