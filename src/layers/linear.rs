//! Fully connected layer: `y = x W^T + b`.
//!
//! Shapes: `x: (batch, in)`, `W: (out, in)` (the assignment's alpha without its bias
//! column), `b: (out)`, `y: (batch, out)`. Every product is one GEMM through OpenBLAS on
//! the stored layouts; transposes are views that reach BLAS as a transpose flag.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rand::Rng;

use crate::buffer::Buffer;
use crate::gemm::gemm;
use crate::init::{self, Init};
use crate::module::{Module, Parameter, ParameterKind};
use crate::Float;

/// A linear (fully connected) layer with its parameters, their gradients and its buffers.
#[derive(Clone, Debug)]
pub struct Linear<F> {
    /// `(out, in)`.
    pub weights: Array2<F>,
    /// `(out)`.
    pub bias: Array1<F>,
    /// dL/dW from the last `backward`, `(out, in)`.
    pub d_weights: Array2<F>,
    /// dL/db from the last `backward`, `(out)`.
    pub d_bias: Array1<F>,
    input: Buffer<F>,
    output: Buffer<F>,
    grad_input: Buffer<F>,
    input_gradient: bool,
}

impl<F: Float> Linear<F> {
    /// A layer with the given `weights: (out, in)` and `bias: (out)`.
    ///
    /// # Panics
    /// If `bias.len() != weights.nrows()`.
    #[track_caller]
    pub fn from_params(weights: Array2<F>, bias: Array1<F>) -> Self {
        assert_eq!(
            bias.len(),
            weights.nrows(),
            "Linear::from_params: bias has {} entries, weights have {} rows",
            bias.len(),
            weights.nrows()
        );
        let weights = weights.as_standard_layout().into_owned();
        let d_weights = Array2::zeros(weights.raw_dim());
        let d_bias = Array1::zeros(bias.len());
        Self {
            weights,
            bias,
            d_weights,
            d_bias,
            input: Buffer::new(),
            output: Buffer::new(),
            grad_input: Buffer::new(),
            input_gradient: true,
        }
    }

    /// A `(in_features -> out_features)` layer with weights drawn by `init` from `rng`
    /// and a zero bias.
    pub fn new<R: Rng>(in_features: usize, out_features: usize, init: Init, rng: &mut R) -> Self {
        let weights = init::weights(init, out_features, in_features, rng);
        Self::from_params(weights, Array1::zeros(out_features))
    }

    /// Number of input features (`in`).
    pub fn in_features(&self) -> usize {
        self.weights.ncols()
    }

    /// Number of output features (`out`).
    pub fn out_features(&self) -> usize {
        self.weights.nrows()
    }

    /// Whether `backward` computes dL/d(input) (see [`Linear::set_input_gradient`]).
    pub fn input_gradient(&self) -> bool {
        self.input_gradient
    }

    /// Whether `backward` computes dL/d(input). A network's first layer turns it off: its
    /// input is data, and the `(batch, out) x (out, in)` product would be wasted work.
    /// When off, `backward` returns an empty `(0, in)` view.
    pub fn set_input_gradient(&mut self, enabled: bool) {
        self.input_gradient = enabled;
    }
}

impl<F: Float> Linear<F> {
    /// `forward` on an input that `fill_input` writes straight into the layer's own input
    /// buffer `(batch, in)` (for example a batch converted from 8-bit pixels), saving the
    /// copy that `forward` makes of a borrowed input.
    pub fn forward_with(
        &mut self,
        batch: usize,
        fill_input: impl FnOnce(ArrayViewMut2<'_, F>),
    ) -> ArrayView2<'_, F> {
        // x: (batch, in), weights: (out, in) -> (batch, out)
        fill_input(self.input.resize(batch, self.weights.ncols()));
        let mut output = self.output.resize(batch, self.weights.nrows());
        // The bias goes in first and the product is added to it (beta = 1): no extra pass.
        output.assign(&self.bias);
        gemm(
            F::one(),
            self.input.view(),
            self.weights.t(),
            F::one(),
            output,
        );
        self.output.view()
    }

    /// `backward` and a gradient-descent step in one: returns dL/d(input) (computed with
    /// the weights of the last `forward`), then applies
    /// `W = (1 - 2 * learning_rate * weight_decay) W - learning_rate * grad_output^T x` as
    /// ONE GEMM into the weights (`beta != 0`), and `b -= learning_rate * d_bias`.
    ///
    /// Equal to `backward` followed by [`crate::GradientDescent`]'s step (up to rounding),
    /// without writing `d_weights` (left as it was) or reading it back: the training
    /// loop's fast path for plain gradient descent.
    pub fn backward_and_update(
        &mut self,
        grad_output: ArrayView2<'_, F>,
        learning_rate: F,
        weight_decay: F,
    ) -> ArrayView2<'_, F> {
        // grad_output: (batch, out), x: (batch, in), weights: (out, in)
        debug_assert_eq!(
            grad_output.dim(),
            (self.input.shape().0, self.out_features())
        );
        input_gradient_into(
            &mut self.grad_input,
            grad_output,
            self.weights.view(),
            self.input_gradient,
        );
        column_sums_into(grad_output, &mut self.d_bias);
        let shrink = F::one() - (learning_rate + learning_rate) * weight_decay;
        gemm(
            -learning_rate,
            grad_output.t(),
            self.input.view(),
            shrink,
            self.weights.view_mut(),
        );
        self.bias.scaled_add(-learning_rate, &self.d_bias);
        self.grad_input.view()
    }
}

/// `d_bias = column sums of grad_output: (batch, out)`.
fn column_sums_into<F: Float>(grad_output: ArrayView2<'_, F>, d_bias: &mut Array1<F>) {
    d_bias.fill(F::zero());
    for row in grad_output.axis_iter(Axis(0)) {
        *d_bias += &row;
    }
}

/// `grad_input = grad_output W: (batch, in)` into its buffer, or `(0, in)` when disabled.
fn input_gradient_into<F: Float>(
    grad_input: &mut Buffer<F>,
    grad_output: ArrayView2<'_, F>,
    weights: ArrayView2<'_, F>,
    enabled: bool,
) {
    let rows = if enabled { grad_output.nrows() } else { 0 };
    let target = grad_input.resize(rows, weights.ncols());
    if rows > 0 {
        gemm(F::one(), grad_output, weights, F::zero(), target);
    }
}

impl<F: Float> Module<F> for Linear<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        assert_eq!(
            input.ncols(),
            self.in_features(),
            "Linear::forward: input has {} features, the layer expects {}",
            input.ncols(),
            self.in_features()
        );
        self.forward_with(input.nrows(), |mut buffer| buffer.assign(&input))
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // grad_output: (batch, out), x: (batch, in) -> d_weights: (out, in), d_bias: (out),
        // grad_input: (batch, in)
        let input = self.input.view();
        assert_eq!(
            grad_output.dim(),
            (input.nrows(), self.out_features()),
            "Linear::backward: grad_output shape differs from the last forward's output"
        );
        gemm(
            F::one(),
            grad_output.t(),
            input,
            F::zero(),
            self.d_weights.view_mut(),
        );
        column_sums_into(grad_output, &mut self.d_bias);
        input_gradient_into(
            &mut self.grad_input,
            grad_output,
            self.weights.view(),
            self.input_gradient,
        );
        self.grad_input.view()
    }

    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        visitor(Parameter {
            kind: ParameterKind::Weight,
            value: self
                .weights
                .as_slice_mut()
                .expect("weights are standard layout"),
            gradient: self.d_weights.as_slice().expect("standard layout"),
        });
        visitor(Parameter {
            kind: ParameterKind::Bias,
            value: self.bias.as_slice_mut().expect("bias is contiguous"),
            gradient: self.d_bias.as_slice().expect("contiguous"),
        });
    }
}
