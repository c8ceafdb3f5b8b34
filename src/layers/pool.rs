//! 2-D max and average pooling (PyTorch's `nn.MaxPool2d` and `nn.AvgPool2d` with
//! `ceil_mode=False`, `dilation=1`, and for averages `count_include_pad=True`).
//!
//! Shapes: `x: (batch, C * H * W)` (NCHW rows, see [`ImageShape`]), `y: (batch, C * OH * OW)`.

use ndarray::ArrayView2;

use crate::float::Float;
use crate::layers::image::ImageShape;
use crate::module::Module;

/// Which value a window gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest (NaN wins, as in PyTorch); the gradient goes to that element.
    Max,
    /// The mean over the whole window, padding included.
    Average,
}

/// A pooling layer.
#[derive(Clone, Debug)]
pub struct Pool2d<F> {
    _todo: std::marker::PhantomData<F>,
}

impl<F: Float> Pool2d<F> {
    /// A layer pooling `input` images with a `kernel` window `(kh, kw)`, `stride` and
    /// `padding` (PyTorch: at most half the kernel; `-inf` for max, zeros for average).
    pub fn new(
        kind: PoolKind,
        input: ImageShape,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Self {
        let _ = (kind, input, kernel, stride, padding);
        todo!()
    }

    /// Max or average.
    pub fn kind(&self) -> PoolKind {
        todo!()
    }

    /// The shape of one input image.
    pub fn input_shape(&self) -> ImageShape {
        todo!()
    }

    /// The shape of one output image.
    pub fn output_shape(&self) -> ImageShape {
        todo!()
    }
}

impl<F: Float> Module<F> for Pool2d<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = input;
        todo!()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = grad_output;
        todo!()
    }
}
