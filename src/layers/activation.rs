//! Elementwise activations: `y = f(x)`, `dL/dx = dL/dy * f'(x)`, with `f'` written in
//! terms of the output `y` (so only the output is kept for `backward`).
//!
//! Shapes: `x, y, dL/dy, dL/dx: (batch, features)`. Large batches are split across
//! threads with rayon; small ones run serially (see [`crate::parallel::worth_parallel`]).

use std::marker::PhantomData;

use ndarray::{ArrayView2, Zip};

use crate::buffer::Buffer;
use crate::module::Module;
use crate::parallel::{worth_parallel, CHEAP_ELEMENT, TRANSCENDENTAL_ELEMENT};
use crate::Float;

/// An elementwise function with its derivative expressed through its output.
pub trait ActivationFn: Clone + Default + Send + Sync {
    /// The activation's name as the command line and checkpoints spell it.
    const NAME: &'static str;
    /// Relative cost per element, for the serial/parallel choice.
    const COST: usize;
    /// `f(x)`.
    fn value<F: Float>(x: F) -> F;
    /// `f'(x)` given `y = f(x)`.
    fn derivative_from_output<F: Float>(y: F) -> F;
}

/// The logistic function `1 / (1 + e^-x)`, computed without overflow for any `x`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SigmoidFn;

impl ActivationFn for SigmoidFn {
    const NAME: &'static str = "sigmoid";
    const COST: usize = TRANSCENDENTAL_ELEMENT;

    fn value<F: Float>(x: F) -> F {
        if x >= F::zero() {
            F::one() / (F::one() + (-x).exp())
        } else {
            let e = x.exp();
            e / (F::one() + e)
        }
    }

    fn derivative_from_output<F: Float>(y: F) -> F {
        y * (F::one() - y)
    }
}

/// `max(0, x)`, with subgradient 0 at 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReluFn;

impl ActivationFn for ReluFn {
    const NAME: &'static str = "relu";
    const COST: usize = CHEAP_ELEMENT;

    fn value<F: Float>(x: F) -> F {
        if x > F::zero() {
            x
        } else {
            F::zero()
        }
    }

    fn derivative_from_output<F: Float>(y: F) -> F {
        if y > F::zero() {
            F::one()
        } else {
            F::zero()
        }
    }
}

/// The hyperbolic tangent.
#[derive(Clone, Copy, Debug, Default)]
pub struct TanhFn;

impl ActivationFn for TanhFn {
    const NAME: &'static str = "tanh";
    const COST: usize = TRANSCENDENTAL_ELEMENT;

    fn value<F: Float>(x: F) -> F {
        x.tanh()
    }

    fn derivative_from_output<F: Float>(y: F) -> F {
        F::one() - y * y
    }
}

/// An activation layer: applies `A` elementwise and keeps its output for `backward`.
#[derive(Clone, Debug, Default)]
pub struct Activation<F, A> {
    output: Buffer<F>,
    grad_input: Buffer<F>,
    function: PhantomData<A>,
}

/// The logistic sigmoid layer.
pub type Sigmoid<F> = Activation<F, SigmoidFn>;
/// The rectified linear unit layer.
pub type Relu<F> = Activation<F, ReluFn>;
/// The tanh layer.
pub type Tanh<F> = Activation<F, TanhFn>;

impl<F: Float, A: ActivationFn> Activation<F, A> {
    /// A layer with empty buffers (sized on the first `forward`).
    pub fn new() -> Self {
        Self {
            output: Buffer::new(),
            grad_input: Buffer::new(),
            function: PhantomData,
        }
    }
}

impl<F: Float, A: ActivationFn> Module<F> for Activation<F, A> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // x: (batch, features) -> y: (batch, features)
        let output = self.output.resize(input.nrows(), input.ncols());
        let zip = Zip::from(output).and(&input);
        if worth_parallel(zip.size(), A::COST) {
            zip.par_for_each(|y, &x| *y = A::value(x));
        } else {
            zip.for_each(|y, &x| *y = A::value(x));
        }
        self.output.view()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // dL/dy: (batch, features), y: (batch, features) -> dL/dx: (batch, features)
        let output = self.output.view();
        assert_eq!(
            grad_output.dim(),
            output.dim(),
            "{}::backward: grad_output shape differs from the last forward's output",
            A::NAME
        );
        let grad_input = self.grad_input.resize(output.nrows(), output.ncols());
        let zip = Zip::from(grad_input).and(&grad_output).and(&output);
        if worth_parallel(zip.size(), A::COST) {
            zip.par_for_each(|dx, &dy, &y| *dx = dy * A::derivative_from_output(y));
        } else {
            zip.for_each(|dx, &dy, &y| *dx = dy * A::derivative_from_output(y));
        }
        self.grad_input.view()
    }
}
