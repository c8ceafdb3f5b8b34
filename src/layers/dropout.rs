//! Dropout (PyTorch's `nn.Dropout`): in training each element is kept with probability
//! `1 - p` and scaled by `1 / (1 - p)`, zeroed otherwise; in evaluation `y = x`.
//!
//! The masks come from the layer's own seeded stream, so a run is reproducible, and its
//! position can be saved and restored (a resumed run draws the masks it would have drawn).
//! Shapes: `x, y, mask: (batch, features)`.

use ndarray::ArrayView2;

use crate::float::Float;
use crate::module::Module;

/// A dropout layer with its random stream and the last mask.
#[derive(Clone, Debug)]
pub struct Dropout<F> {
    _todo: std::marker::PhantomData<F>,
}

impl<F: Float> Dropout<F> {
    /// A layer zeroing with probability `p` (in `[0, 1]`), in training mode, its stream
    /// seeded with `seed`.
    pub fn new(p: f64, seed: u64) -> Self {
        let _ = (p, seed);
        todo!()
    }

    /// `p`.
    pub fn p(&self) -> f64 {
        todo!()
    }

    /// Whether masks are drawn (training) or the input passes unchanged (evaluation).
    pub fn training(&self) -> bool {
        todo!()
    }

    /// Switches between training and evaluation.
    pub fn set_training(&mut self, training: bool) {
        let _ = training;
        todo!()
    }

    /// The last training `forward`'s mask `(batch, features)`: 0 or `1 / (1 - p)`.
    pub fn mask(&self) -> ArrayView2<'_, F> {
        todo!()
    }

    /// The seed of the layer's stream.
    pub fn seed(&self) -> u64 {
        todo!()
    }

    /// How far the stream has advanced (its word position).
    pub fn stream_position(&self) -> u128 {
        todo!()
    }

    /// Moves the stream to `position` (from [`Dropout::stream_position`]).
    pub fn set_stream_position(&mut self, position: u128) {
        let _ = position;
        todo!()
    }
}

impl<F: Float> Module<F> for Dropout<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = input;
        todo!()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = grad_output;
        todo!()
    }
}
