//! The layers of a network: [`Linear`] and [`Activation`] (one type for every
//! [`ActivationKind`]), and [`Layer`], the closed set of them that a
//! network holds.

mod activation;
mod conv;
mod dropout;
mod image;
mod input_activation;
mod linear;
mod norm;
mod pool;

use ndarray::ArrayView2;

pub use activation::{Activation, ActivationKind};
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use image::{window_output, ImageShape};
pub use input_activation::{InputActivation, InputActivationKind};
pub use norm::{BatchNorm, LayerNorm};
pub use pool::{Pool2d, PoolKind};
pub use linear::Linear;
pub(crate) use linear::{column_sums, fill_rows_with, LinearViews};

use crate::float::Float;
use crate::module::{Module, Parameter};

/// One layer of a network.
// A network holds a handful of layers: keeping them inline (no Box) costs a few hundred
// bytes per activation layer and saves an indirection on every forward and backward.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Layer<F> {
    /// A fully connected layer.
    Linear(Linear<F>),
    /// An elementwise activation.
    Activation(Activation<F>),
}

impl<F: Float> Layer<F> {
    /// A fresh activation layer of `kind`.
    pub fn activation(kind: ActivationKind) -> Self {
        Layer::Activation(Activation::new(kind))
    }

    /// The activation kind, or `None` for a linear layer.
    pub fn activation_kind(&self) -> Option<ActivationKind> {
        match self {
            Layer::Linear(_) => None,
            Layer::Activation(activation) => Some(activation.kind()),
        }
    }

    /// The linear layer inside, if it is one.
    pub fn as_linear(&self) -> Option<&Linear<F>> {
        match self {
            Layer::Linear(linear) => Some(linear),
            Layer::Activation(_) => None,
        }
    }

    /// The linear layer inside, mutable, if it is one.
    pub fn as_linear_mut(&mut self) -> Option<&mut Linear<F>> {
        match self {
            Layer::Linear(linear) => Some(linear),
            Layer::Activation(_) => None,
        }
    }

    fn module(&mut self) -> &mut dyn Module<F> {
        match self {
            Layer::Linear(layer) => layer,
            Layer::Activation(layer) => layer,
        }
    }
}

impl<F: Float> From<Linear<F>> for Layer<F> {
    fn from(linear: Linear<F>) -> Self {
        Layer::Linear(linear)
    }
}

impl<F: Float> From<Activation<F>> for Layer<F> {
    fn from(activation: Activation<F>) -> Self {
        Layer::Activation(activation)
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
