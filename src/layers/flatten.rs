//! `Flatten` (PyTorch's `nn.Flatten`): `(batch, C, H, W)` images to `(batch, C * H * W)`
//! features. A batch of images is already stored as `(batch, C * H * W)` rows, so the
//! values do not change: a network skips the layer, and on its own it copies.

use ndarray::ArrayView2;

use crate::buffer::Buffer;
use crate::float::Float;
use crate::module::Module;

/// A flatten layer (on its own: a copy of its input and of the gradient).
#[derive(Clone, Debug, Default)]
pub struct Flatten<F> {
    output: Buffer<F>,
    grad_input: Buffer<F>,
}

impl<F: Float> Flatten<F> {
    /// A flatten layer.
    pub fn new() -> Self {
        Self {
            output: Buffer::new(),
            grad_input: Buffer::new(),
        }
    }
}

impl<F: Float> Module<F> for Flatten<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        self.output
            .resize(input.nrows(), input.ncols())
            .assign(&input);
        self.output.view()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        self.grad_input
            .resize(grad_output.nrows(), grad_output.ncols())
            .assign(&grad_output);
        self.grad_input.view()
    }
}
