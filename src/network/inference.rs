//! The forward pass of a network that only reads it, into buffers the caller owns: how
//! several threads evaluate one model at once, each with its own [`Scratch`].
//!
//! Shapes: input `(rows, in)`, logits `(rows, out)`. Every layer's values equal those of
//! [`Module::forward`](crate::module::Module::forward) in evaluation mode bit for bit (the
//! same GEMM, the same elementwise formulas, applied in place). A network with layers
//! beyond the perceptron's runs a copy of itself that the scratch keeps (in evaluation
//! mode, its parameters and running statistics refreshed on each call).

use ndarray::{s, ArrayView2, ArrayViewMut2};

use crate::buffer::Buffer;
use crate::float::Float;
use crate::layers::Layer;
use crate::module::Module;

use super::MultiLayerPerceptron;

/// Rows per forward pass of a network beyond the perceptron (its copy's buffers, a
/// convolution's unfolded input among them, are sized for this many rows).
const COPY_PIECE_ROWS: usize = 32;

/// The buffers of one thread's forward passes: the input and two alternating layer
/// outputs (and, for a network beyond the perceptron, the thread's copy of it). They
/// grow to the largest chunk seen and are reused after that.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch<F> {
    buffers: [Buffer<F>; 3],
    copy: Option<Box<MultiLayerPerceptron<F>>>,
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
        if !self.is_perceptron() {
            let Scratch { buffers, copy } = scratch;
            let [input, output, _] = buffers;
            let copy = copy.get_or_insert_with(|| Box::new(self.clone()));
            copy.copy_state_from(self);
            copy.set_training(false);
            // In pieces: a convolution's unfolded input is hundreds of values per row.
            let mut logits = output.resize(rows, self.out_features());
            for start in (0..rows).step_by(COPY_PIECE_ROWS) {
                let rows = start..(start + COPY_PIECE_ROWS).min(rows);
                let piece = copy.forward(input.view().slice_move(s![rows.clone(), ..]));
                logits.slice_mut(s![rows, ..]).assign(&piece);
            }
            return output.view();
        }
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
                // Cannot happen: other networks returned above.
                _ => unreachable!("a perceptron holds linear layers and activations"),
            }
        }
        scratch.buffers[current].view()
    }
}
