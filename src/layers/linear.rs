//! Fully connected layer: `y = x W^T + b`.
//!
//! Shapes: `x: (batch, in)`, `W: (out, in)` (the assignment's alpha without its bias
//! column), `b: (out)`, `y: (batch, out)`. Every product is one GEMM through OpenBLAS on
//! the stored layouts; transposes are views that reach BLAS as a transpose flag. The
//! parameters are kept in standard (row-major) layout: they are reached through views,
//! which can change values but never the layout.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rand::Rng;

use crate::buffer::Buffer;
use crate::float::Float;
use crate::gemm::gemm;
use crate::init::{self, Init};
use crate::module::{Module, Parameter, ParameterKind};
use crate::optim::PlainUpdate;

/// A linear (fully connected) layer with its parameters, their gradients and its buffers.
#[derive(Clone, Debug)]
pub struct Linear<F> {
    weights: Array2<F>,
    bias: Array1<F>,
    d_weights: Array2<F>,
    d_bias: Array1<F>,
    input: Buffer<F>,
    output: Buffer<F>,
    grad_input: Buffer<F>,
    compute_grad_input: bool,
}

impl<F: Float> Linear<F> {
    /// A layer with the given `weights: (out, in)` and `bias: (out)` (any memory layout;
    /// stored row-major).
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
        let bias = bias.as_standard_layout().into_owned();
        Self {
            d_weights: Array2::zeros(weights.raw_dim()),
            d_bias: Array1::zeros(bias.len()),
            weights,
            bias,
            input: Buffer::new(),
            output: Buffer::new(),
            grad_input: Buffer::new(),
            compute_grad_input: true,
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

    /// The weights `W: (out, in)`.
    pub fn weights(&self) -> ArrayView2<'_, F> {
        self.weights.view()
    }

    /// The weights `W: (out, in)`, to change in place.
    pub fn weights_mut(&mut self) -> ArrayViewMut2<'_, F> {
        self.weights.view_mut()
    }

    /// The bias `b: (out)`.
    pub fn bias(&self) -> ArrayView1<'_, F> {
        self.bias.view()
    }

    /// The bias `b: (out)`, to change in place.
    pub fn bias_mut(&mut self) -> ArrayViewMut1<'_, F> {
        self.bias.view_mut()
    }

    /// dL/dW `(out, in)` from the last `backward`.
    pub fn d_weights(&self) -> ArrayView2<'_, F> {
        self.d_weights.view()
    }

    /// dL/db `(out)` from the last `backward`.
    pub fn d_bias(&self) -> ArrayView1<'_, F> {
        self.d_bias.view()
    }

    /// The parameter gradients `(dW (out, in), db (out))`, for a caller that computes
    /// them itself (the scikit-learn engine's sparse first layer).
    pub(crate) fn gradients_mut(&mut self) -> (ArrayViewMut2<'_, F>, ArrayViewMut1<'_, F>) {
        (self.d_weights.view_mut(), self.d_bias.view_mut())
    }

    /// Whether `backward` computes dL/d(input) (see [`Linear::set_compute_grad_input`]).
    pub fn computes_grad_input(&self) -> bool {
        self.compute_grad_input
    }

    /// Whether `backward` computes dL/d(input). A network's first layer turns it off
    /// while training: its input is data, and the `(batch, out) x (out, in)` product would
    /// be wasted work. When off, `backward` returns an empty `(0, in)` view.
    pub fn set_compute_grad_input(&mut self, enabled: bool) {
        self.compute_grad_input = enabled;
    }

    /// `forward` on an input that `fill_input` writes straight into the layer's own input
    /// buffer `(batch, in)` (for example a batch converted from 8-bit pixels), saving the
    /// copy that `forward` makes of a borrowed input.
    pub(crate) fn forward_with(
        &mut self,
        batch: usize,
        fill_input: impl FnOnce(ArrayViewMut2<'_, F>),
    ) -> ArrayView2<'_, F> {
        // x: (batch, in), weights: (out, in) -> (batch, out)
        fill_input(self.input.resize(batch, self.weights.ncols()));
        let mut output = self.output.resize(batch, self.weights.nrows());
        // The bias goes in first and the product is added to it (beta = 1): no extra pass.
        fill_rows_with(output.view_mut(), self.bias.view());
        gemm(
            F::one(),
            self.input.view(),
            self.weights.t(),
            F::one(),
            output,
        );
        self.output.view()
    }

    /// `backward` and a plain gradient-descent step in one: returns dL/d(input) (computed
    /// with the weights of the last `forward`), then applies `update` to the weights as
    /// ONE GEMM, `W = shrink W - lr grad_output^T x` (`beta = shrink`, see
    /// [`PlainUpdate`]), and to the bias. `d_weights` is neither written nor read: the
    /// training loop's fast path when the optimizer keeps no state.
    pub(crate) fn backward_and_step(
        &mut self,
        grad_output: ArrayView2<'_, F>,
        update: PlainUpdate<F>,
    ) -> ArrayView2<'_, F> {
        // grad_output: (batch, out), x: (batch, in), weights: (out, in)
        assert_eq!(
            grad_output.dim(),
            (self.input.shape().0, self.out_features()),
            "Linear::backward_and_step: grad_output shape differs from the last forward's output"
        );
        grad_input_into(
            &mut self.grad_input,
            grad_output,
            self.weights.view(),
            self.compute_grad_input,
        );
        column_sums_into(grad_output, &mut self.d_bias);
        gemm(
            -update.lr(),
            grad_output.t(),
            self.input.view(),
            update.shrink(ParameterKind::Weight),
            self.weights.view_mut(),
        );
        update.apply(
            ParameterKind::Bias,
            // Cannot fail: private parameters, built in standard layout (`from_params`).
            self.bias.as_slice_mut().expect("standard layout"),
            // Cannot fail: private parameters, built in standard layout (`from_params`).
            self.d_bias.as_slice().expect("standard layout"),
        );
        self.grad_input.view()
    }
}

/// Mutable views of a layer's parameters and gradients, for the per-core step, which
/// splits them between cores (see `network::sliced`).
pub(crate) struct LinearViews<'a, F> {
    /// `W: (out, in)`.
    pub(crate) weights: ArrayViewMut2<'a, F>,
    /// `b: (out)`.
    pub(crate) bias: ArrayViewMut1<'a, F>,
    /// dL/dW `(out, in)`.
    pub(crate) d_weights: ArrayViewMut2<'a, F>,
    /// dL/db `(out)` (scratch of the fused step).
    pub(crate) d_bias: ArrayViewMut1<'a, F>,
}

impl<F: Float> Linear<F> {
    /// `output = input W^T + b` into a buffer the caller owns: `input: (batch, in)`,
    /// `output: (batch, out)`. Reads the layer only, so that several threads can run it
    /// at once (evaluation); the values equal `forward`'s.
    pub(crate) fn forward_into(&self, input: ArrayView2<'_, F>, mut output: ArrayViewMut2<'_, F>) {
        fill_rows_with(output.view_mut(), self.bias.view());
        gemm(F::one(), input, self.weights.t(), F::one(), output);
    }

    /// The parameters and their gradients as mutable views.
    pub(crate) fn views_mut(&mut self) -> LinearViews<'_, F> {
        LinearViews {
            weights: self.weights.view_mut(),
            bias: self.bias.view_mut(),
            d_weights: self.d_weights.view_mut(),
            d_bias: self.d_bias.view_mut(),
        }
    }
}

/// `d_bias = column sums of grad_output: (batch, out)`, summed row after row (the order
/// every path uses, so that they agree bit for bit).
pub(crate) fn column_sums<F: Float>(
    grad_output: ArrayView2<'_, F>,
    mut d_bias: ArrayViewMut1<'_, F>,
) {
    d_bias.fill(F::zero());
    if let Some(sums) = d_bias.as_slice_mut() {
        // The usual case: a contiguous sum, rows added as plain slices (no broadcast).
        for row in grad_output.rows() {
            match row.as_slice() {
                Some(row) => sums.iter_mut().zip(row).for_each(|(sum, &g)| *sum += g),
                None => sums.iter_mut().zip(row).for_each(|(sum, &g)| *sum += g),
            }
        }
        return;
    }
    for row in grad_output.axis_iter(Axis(0)) {
        d_bias += &row;
    }
}

/// Every row of `output: (batch, out)` set to `bias: (out)` (the GEMM's initial
/// accumulator), row by row as plain slices where the layouts allow.
pub(crate) fn fill_rows_with<F: Float>(mut output: ArrayViewMut2<'_, F>, bias: ArrayView1<'_, F>) {
    let Some(bias) = bias.as_slice() else {
        output.assign(&bias);
        return;
    };
    for mut row in output.rows_mut() {
        match row.as_slice_mut() {
            Some(row) => row.copy_from_slice(bias),
            None => row.iter_mut().zip(bias).for_each(|(value, &b)| *value = b),
        }
    }
}

/// `d_bias = column sums of grad_output: (batch, out)`.
fn column_sums_into<F: Float>(grad_output: ArrayView2<'_, F>, d_bias: &mut Array1<F>) {
    column_sums(grad_output, d_bias.view_mut());
}

/// `grad_input = grad_output W: (batch, in)` into its buffer, or `(0, in)` when disabled.
fn grad_input_into<F: Float>(
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
        grad_input_into(
            &mut self.grad_input,
            grad_output,
            self.weights.view(),
            self.compute_grad_input,
        );
        self.grad_input.view()
    }

    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        visitor(Parameter::of_layer(
            ParameterKind::Weight,
            &mut self.weights,
            &self.d_weights,
        ));
        visitor(Parameter::of_layer(
            ParameterKind::Bias,
            &mut self.bias,
            &self.d_bias,
        ));
    }
}
