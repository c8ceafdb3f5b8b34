//! The layers of a network: [`Linear`] and the elementwise activations, and [`Layer`],
//! the closed set of them that a [`crate::MultiLayerPerceptron`] holds.

mod activation;
mod linear;

use std::fmt;
use std::str::FromStr;

use ndarray::ArrayView2;

pub use activation::{Activation, ActivationFn, Relu, ReluFn, Sigmoid, SigmoidFn, Tanh, TanhFn};
pub use linear::Linear;

use crate::module::{Module, Parameter};
use crate::Float;

/// Which elementwise activation a hidden layer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActivationKind {
    /// [`Sigmoid`].
    Sigmoid,
    /// [`Relu`].
    Relu,
    /// [`Tanh`].
    Tanh,
}

impl ActivationKind {
    /// Every kind, in the order the command line lists them.
    pub const ALL: [ActivationKind; 3] = [Self::Sigmoid, Self::Relu, Self::Tanh];

    /// The lower-case name (`sigmoid`, `relu`, `tanh`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sigmoid => SigmoidFn::NAME,
            Self::Relu => ReluFn::NAME,
            Self::Tanh => TanhFn::NAME,
        }
    }

    /// A fresh layer of this kind.
    pub fn layer<F: Float>(self) -> Layer<F> {
        match self {
            Self::Sigmoid => Layer::Sigmoid(Sigmoid::new()),
            Self::Relu => Layer::Relu(Relu::new()),
            Self::Tanh => Layer::Tanh(Tanh::new()),
        }
    }
}

impl fmt::Display for ActivationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ActivationKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("unknown activation '{name}' (expected sigmoid, relu or tanh)"))
    }
}

/// One layer of a network.
// A network holds a handful of layers: keeping them inline (no Box) costs a few hundred
// bytes per activation layer and saves an indirection on every forward and backward.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Layer<F> {
    /// A fully connected layer.
    Linear(Linear<F>),
    /// A sigmoid activation.
    Sigmoid(Sigmoid<F>),
    /// A ReLU activation.
    Relu(Relu<F>),
    /// A tanh activation.
    Tanh(Tanh<F>),
}

impl<F: Float> Layer<F> {
    /// The activation kind, or `None` for a linear layer.
    pub fn activation(&self) -> Option<ActivationKind> {
        match self {
            Layer::Linear(_) => None,
            Layer::Sigmoid(_) => Some(ActivationKind::Sigmoid),
            Layer::Relu(_) => Some(ActivationKind::Relu),
            Layer::Tanh(_) => Some(ActivationKind::Tanh),
        }
    }

    /// The linear layer inside, if it is one.
    pub fn as_linear(&self) -> Option<&Linear<F>> {
        match self {
            Layer::Linear(linear) => Some(linear),
            _ => None,
        }
    }

    /// The linear layer inside, mutable, if it is one.
    pub fn as_linear_mut(&mut self) -> Option<&mut Linear<F>> {
        match self {
            Layer::Linear(linear) => Some(linear),
            _ => None,
        }
    }

    fn module(&mut self) -> &mut dyn Module<F> {
        match self {
            Layer::Linear(layer) => layer,
            Layer::Sigmoid(layer) => layer,
            Layer::Relu(layer) => layer,
            Layer::Tanh(layer) => layer,
        }
    }
}

impl<F: Float> From<Linear<F>> for Layer<F> {
    fn from(linear: Linear<F>) -> Self {
        Layer::Linear(linear)
    }
}

impl<F: Float> Module<F> for Layer<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        self.module().forward(input)
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        self.module().backward(grad_output)
    }

    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        self.module().visit_parameters(visitor)
    }
}
