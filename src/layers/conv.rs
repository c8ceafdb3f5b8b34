//! 2-D convolution (PyTorch's `nn.Conv2d`, cross-correlation, `groups=1`, `dilation=1`)
//! as im2col + one GEMM per batch.
//!
//! Shapes: `x: (batch, C_in * H * W)` (NCHW rows, see [`ImageShape`]), weight
//! `(C_out, C_in * kh * kw)` (PyTorch's `(C_out, C_in, kh, kw)` flattened row-major),
//! bias `(C_out)`, `y: (batch, C_out * OH * OW)`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rand::Rng;

use crate::float::Float;
use crate::init::Init;
use crate::layers::image::ImageShape;
use crate::module::{Module, Parameter};

/// A 2-D convolution layer with its parameters, their gradients and its buffers.
#[derive(Clone, Debug)]
pub struct Conv2d<F> {
    _todo: std::marker::PhantomData<F>,
}

impl<F: Float> Conv2d<F> {
    /// A layer taking `input` images to `out_channels` channels with a `kernel` window
    /// `(kh, kw)`, `stride` and zero `padding` (both `(rows, columns)`); weights drawn by
    /// `init` as a `(C_out, C_in * kh * kw)` matrix (fan-in `C_in * kh * kw`), bias zero
    /// (or none when `bias` is false).
    pub fn new<R: Rng + ?Sized>(
        input: ImageShape,
        out_channels: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        bias: bool,
        init: Init,
        rng: &mut R,
    ) -> Self {
        let _ = (input, out_channels, kernel, stride, padding, bias, init, rng);
        todo!()
    }

    /// A layer with the given `weight: (C_out, C_in * kh * kw)` and optional `bias: (C_out)`.
    ///
    /// # Panics
    /// If the shapes do not agree with `input` and `kernel`, or the window does not fit.
    pub fn from_params(
        input: ImageShape,
        weight: Array2<F>,
        bias: Option<Array1<F>>,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Self {
        let _ = (input, weight, bias, kernel, stride, padding);
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

    /// `(kh, kw)`.
    pub fn kernel_size(&self) -> (usize, usize) {
        todo!()
    }

    /// `(rows, columns)` step.
    pub fn stride(&self) -> (usize, usize) {
        todo!()
    }

    /// `(rows, columns)` zero padding on each side.
    pub fn padding(&self) -> (usize, usize) {
        todo!()
    }

    /// The weight `(C_out, C_in * kh * kw)`.
    pub fn weight(&self) -> ArrayView2<'_, F> {
        todo!()
    }

    /// The weight, to change in place.
    pub fn weight_mut(&mut self) -> ArrayViewMut2<'_, F> {
        todo!()
    }

    /// The bias `(C_out)`, if the layer has one.
    pub fn bias(&self) -> Option<ArrayView1<'_, F>> {
        todo!()
    }

    /// The bias, to change in place.
    pub fn bias_mut(&mut self) -> Option<ArrayViewMut1<'_, F>> {
        todo!()
    }

    /// dL/dW `(C_out, C_in * kh * kw)` from the last `backward`.
    pub fn d_weight(&self) -> ArrayView2<'_, F> {
        todo!()
    }

    /// dL/db `(C_out)` from the last `backward`, if the layer has a bias.
    pub fn d_bias(&self) -> Option<ArrayView1<'_, F>> {
        todo!()
    }

    /// Whether `backward` computes dL/d(input) (off for a network's first layer, whose
    /// input is data; `backward` then returns an empty `(0, C_in * H * W)` view).
    pub fn set_compute_grad_input(&mut self, enabled: bool) {
        let _ = enabled;
        todo!()
    }

    /// See [`Conv2d::set_compute_grad_input`].
    pub fn computes_grad_input(&self) -> bool {
        todo!()
    }
}

impl<F: Float> Module<F> for Conv2d<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = input;
        todo!()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = grad_output;
        todo!()
    }

    /// Weight (`ParameterKind::Weight`, layer 0) then bias (`ParameterKind::Bias`).
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        let _ = visitor;
        todo!()
    }
}
