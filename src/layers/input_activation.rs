//! The activations whose derivative needs the input (PyTorch's `nn.LeakyReLU`,
//! `nn.GELU`, `nn.SiLU`, `nn.ELU`): the layer keeps `x` for `backward`. The assignment's
//! four (sigmoid, ReLU, tanh, identity) are [`crate::layers::Activation`], which keeps
//! only the output.
//!
//! Shapes: `x, y, dL/dy, dL/dx: (batch, features)`.

use ndarray::ArrayView2;

use crate::float::Float;
use crate::module::Module;

/// Which function, with PyTorch's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InputActivationKind {
    /// `x` for `x > 0`, `negative_slope * x` otherwise.
    LeakyRelu {
        /// The slope below zero (PyTorch's default 0.01).
        negative_slope: f64,
    },
    /// `x * Phi(x)` with the normal CDF `Phi`; with `tanh`, PyTorch's
    /// `approximate='tanh'`: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    Gelu {
        /// Whether the tanh approximation is used.
        tanh: bool,
    },
    /// `x * sigmoid(x)`.
    Silu,
    /// `x` for `x > 0`, `alpha * (e^x - 1)` otherwise.
    Elu {
        /// PyTorch's default 1.0.
        alpha: f64,
    },
}

/// An activation layer of an [`InputActivationKind`].
#[derive(Clone, Debug)]
pub struct InputActivation<F> {
    _todo: std::marker::PhantomData<F>,
}

impl<F: Float> InputActivation<F> {
    /// A layer of `kind` with empty buffers.
    pub fn new(kind: InputActivationKind) -> Self {
        let _ = kind;
        todo!()
    }

    /// The function this layer applies.
    pub fn kind(&self) -> InputActivationKind {
        todo!()
    }
}

impl<F: Float> Module<F> for InputActivation<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = input;
        todo!()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = grad_output;
        todo!()
    }
}
