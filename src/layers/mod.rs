//! The layers of a network: [`Linear`], [`Conv2d`], [`Pool2d`], [`BatchNorm`],
//! [`LayerNorm`], [`Dropout`], the activations ([`Activation`] for the assignment's four,
//! which keeps its output, and [`InputActivation`] for those whose derivative needs the
//! input), and [`Layer`], the closed set of them that a network holds.
//!
//! Every layer takes and gives `(batch, features)` matrices; an image is a row of
//! `C * H * W` values in PyTorch's NCHW order ([`ImageShape`]), so `Flatten` moves no data.

mod activation;
mod conv;
mod dropout;
mod flatten;
mod image;
mod input_activation;
mod linear;
mod norm;
mod pool;
mod state;
#[cfg(test)]
mod testing;

use ndarray::ArrayView2;

pub use activation::{Activation, ActivationKind};
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use image::{window_output, ImageShape};
pub use input_activation::{InputActivation, InputActivationKind};
pub use linear::Linear;
pub(crate) use linear::{column_sums, fill_rows_with, LinearViews};
pub use norm::{BatchNorm, LayerNorm};
pub use pool::{Pool2d, PoolKind};
pub use state::StateValues;

use crate::float::Float;
use crate::module::{Module, Parameter};

/// One layer of a network.
// A network holds a handful of layers: keeping them inline (no Box) costs a few hundred
// bytes per small layer and saves an indirection on every forward and backward.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Layer<F> {
    /// A fully connected layer.
    Linear(Linear<F>),
    /// One of the assignment's elementwise activations.
    Activation(Activation<F>),
    /// An elementwise activation that keeps its input (LeakyReLU, GELU, SiLU, ELU).
    InputActivation(InputActivation<F>),
    /// A 2-D convolution.
    Conv2d(Conv2d<F>),
    /// Max or average pooling.
    Pool2d(Pool2d<F>),
    /// `Flatten`: images to features. The values are already in that order, so a
    /// network passes them through untouched.
    Flatten(Flatten<F>),
    /// Dropout.
    Dropout(Dropout<F>),
    /// Batch normalisation (`BatchNorm1d` or `BatchNorm2d`).
    BatchNorm(BatchNorm<F>),
    /// Layer normalisation.
    LayerNorm(LayerNorm<F>),
}

impl<F: Float> Layer<F> {
    /// A fresh activation layer of `kind`.
    pub fn activation(kind: ActivationKind) -> Self {
        Layer::Activation(Activation::new(kind))
    }

    /// The activation kind, or `None` for any other layer.
    pub fn activation_kind(&self) -> Option<ActivationKind> {
        match self {
            Layer::Activation(activation) => Some(activation.kind()),
            _ => None,
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

    /// Whether the layer is one of the assignment's two kinds (linear or one of its four
    /// activations): the kinds the fused and per-core steps and the shared-model
    /// inference handle.
    pub fn is_assignment_layer(&self) -> bool {
        matches!(self, Layer::Linear(_) | Layer::Activation(_))
    }

    /// Whether the network skips the layer (its output is its input): `Flatten`.
    pub fn passes_through(&self) -> bool {
        matches!(self, Layer::Flatten(_))
    }

    /// The width of the rows the layer takes, when the layer fixes it (`None` for the
    /// elementwise layers, which take any width).
    pub fn in_width(&self) -> Option<usize> {
        match self {
            Layer::Linear(linear) => Some(linear.in_features()),
            Layer::Conv2d(conv) => Some(conv.input_shape().len()),
            Layer::Pool2d(pool) => Some(pool.input_shape().len()),
            Layer::BatchNorm(norm) => Some(norm.channels() * norm.spatial()),
            Layer::LayerNorm(norm) => Some(norm.features()),
            Layer::Activation(_)
            | Layer::InputActivation(_)
            | Layer::Flatten(_)
            | Layer::Dropout(_) => None,
        }
    }

    /// The width of the rows the layer gives, when the layer fixes it.
    pub fn out_width(&self) -> Option<usize> {
        match self {
            Layer::Linear(linear) => Some(linear.out_features()),
            Layer::Conv2d(conv) => Some(conv.output_shape().len()),
            Layer::Pool2d(pool) => Some(pool.output_shape().len()),
            other => other.in_width(),
        }
    }

    /// Switches the layer between training (dropout masks, batch statistics) and
    /// evaluation (no dropout, running statistics); the other layers have one mode.
    pub fn set_training(&mut self, training: bool) {
        match self {
            Layer::Dropout(dropout) => dropout.set_training(training),
            Layer::BatchNorm(norm) => norm.set_training(training),
            _ => {}
        }
    }

    /// Whether `backward` computes dL/d(input) (only a linear or convolution layer can
    /// skip it).
    pub fn computes_grad_input(&self) -> bool {
        match self {
            Layer::Linear(linear) => linear.computes_grad_input(),
            Layer::Conv2d(conv) => conv.computes_grad_input(),
            _ => true,
        }
    }

    /// Turns dL/d(input) off or on, for a linear or convolution layer.
    pub fn set_compute_grad_input(&mut self, enabled: bool) {
        match self {
            Layer::Linear(linear) => linear.set_compute_grad_input(enabled),
            Layer::Conv2d(conv) => conv.set_compute_grad_input(enabled),
            _ => {}
        }
    }

    fn module(&mut self) -> &mut dyn Module<F> {
        match self {
            Layer::Linear(layer) => layer,
            Layer::Activation(layer) => layer,
            Layer::InputActivation(layer) => layer,
            Layer::Conv2d(layer) => layer,
            Layer::Pool2d(layer) => layer,
            Layer::Flatten(layer) => layer,
            Layer::Dropout(layer) => layer,
            Layer::BatchNorm(layer) => layer,
            Layer::LayerNorm(layer) => layer,
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
