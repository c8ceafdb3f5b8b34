//! The network: a list of layers applied in order, as PyTorch's `nn.Sequential`.
//!
//! `forward` maps `(batch, in)` to logits `(batch, classes)` through every layer;
//! `backward` takes dL/d(logits) and runs the layers in reverse, leaving each layer's
//! parameter gradients (`d_weights`, `d_bias`, ...) in place for an optimizer. A network
//! of linear layers and the assignment's activations is the multilayer perceptron; the
//! other layers (convolutions, pooling, normalisation, dropout) are built from a
//! `--layers` spec ([`spec`], [`build`]).

use ndarray::{Array1, ArrayView2, ArrayViewMut2, Axis};
use thiserror::Error;

use crate::buffer::Buffer;
use crate::float::Float;
use crate::init::{self, Init};
use crate::layers::{ActivationKind, Layer, Linear};
use crate::limits::{check_memory, product, sum, TooLarge};
use crate::math::{argmax, sum_of_squares};
use crate::module::{Module, Parameter};
use crate::optim::PlainUpdate;

mod build;
mod inference;
mod sliced;
pub mod spec;

pub use build::{build, describe};

pub(crate) use inference::Scratch;
pub(crate) use sliced::SlicedStep;

/// Why a list of layers does not make a network.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// No layers at all.
    #[error("a network needs at least one layer")]
    Empty,
    /// No linear or convolution layer: nothing to train.
    #[error("a network needs at least one linear layer")]
    NoLinearLayer,
    /// Consecutive layers whose widths do not chain.
    #[error("layer {index} takes {found} inputs, but the layer before it gives {expected}")]
    WidthMismatch {
        /// Position of the offending layer in the list.
        index: usize,
        /// Outputs of the previous linear layer.
        expected: usize,
        /// Inputs of this layer.
        found: usize,
    },
    /// A layer width of zero in a list of sizes.
    #[error("layer sizes must be positive, found {sizes:?}")]
    ZeroWidth {
        /// The sizes given.
        sizes: Vec<usize>,
    },
    /// Fewer than two sizes (an input and an output width are needed).
    #[error("a network needs at least an input and an output size, found {sizes:?}")]
    TooFewSizes {
        /// The sizes given.
        sizes: Vec<usize>,
    },
    /// A width beyond what BLAS's 32-bit integers address.
    #[error("a layer width of {width} is more than BLAS's largest dimension, {limit}")]
    WidthTooLarge {
        /// The width.
        width: usize,
        /// `i32::MAX`.
        limit: usize,
    },
    /// Layers too large for the machine's memory.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// A `--layers` spec that does not fit the data's shape or asks for what nabla
    /// lacks; the error names the layer.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
}

/// Bytes that linear layers of widths `sizes = [in, hidden..., out]` take in `F`: weights
/// and biases, their gradients, and the `f64` draw of the largest weight matrix during
/// initialisation. `None` if the count overflows.
pub fn parameter_bytes<F: Float>(sizes: &[usize]) -> Option<u64> {
    let float = std::mem::size_of::<F>();
    let layers: Vec<Option<u64>> = sizes
        .windows(2)
        .map(|pair| sum([product(&[pair[0], pair[1]]), Some(pair[1] as u64)]))
        .collect();
    let parameters = sum(layers.iter().copied())?;
    let largest_draw = layers
        .iter()
        .copied()
        .try_fold(0u64, |m, l| Some(m.max(l?)))?;
    sum([
        parameters.checked_mul(2 * float as u64),
        largest_draw.checked_mul(8),
    ])
}

/// Checks widths `sizes = [in, hidden..., out]` before any layer is allocated: at least
/// two, none zero, none beyond BLAS's `i32`, and parameters that fit in memory.
pub fn check_sizes<F: Float>(sizes: &[usize]) -> Result<(), ModelError> {
    if sizes.len() < 2 {
        return Err(ModelError::TooFewSizes {
            sizes: sizes.to_vec(),
        });
    }
    if sizes.contains(&0) {
        return Err(ModelError::ZeroWidth {
            sizes: sizes.to_vec(),
        });
    }
    let limit = i32::MAX as usize;
    if let Some(&width) = sizes.iter().find(|&&width| width > limit) {
        return Err(ModelError::WidthTooLarge { width, limit });
    }
    check_parameter_memory::<F>(sizes)?;
    Ok(())
}

/// Checks that a network of widths `sizes` fits in memory (see [`parameter_bytes`]).
fn check_parameter_memory<F: Float>(sizes: &[usize]) -> Result<(), TooLarge> {
    let description = sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("-");
    check_memory(
        format!(
            "a {description} network's parameters and gradients ({})",
            F::NAME
        ),
        parameter_bytes::<F>(sizes),
    )
    .map(drop)
}

/// A feed-forward network of [`Layer`]s applied in order (PyTorch's `nn.Sequential`):
/// linear layers and activations, and the layers of a `--layers` spec.
#[derive(Clone, Debug)]
pub struct MultiLayerPerceptron<F> {
    layers: Vec<Layer<F>>,
    /// The input, for [`MultiLayerPerceptron::forward_with`] when the first layer is not
    /// linear (a linear first layer takes the input into its own buffer).
    input: Buffer<F>,
}

impl<F: Float> MultiLayerPerceptron<F> {
    /// A network of the given layers, checked so that the width each layer gives is the
    /// width the next layer that fixes one takes.
    pub fn new(layers: Vec<Layer<F>>) -> Result<Self, ModelError> {
        if layers.is_empty() {
            return Err(ModelError::Empty);
        }
        let mut previous_width = None;
        for (index, layer) in layers.iter().enumerate() {
            if let (Some(expected), Some(found)) = (previous_width, layer.in_width()) {
                if found != expected {
                    return Err(ModelError::WidthMismatch {
                        index,
                        expected,
                        found,
                    });
                }
            }
            previous_width = layer.out_width().or(previous_width);
        }
        let trainable = layers
            .iter()
            .any(|layer| matches!(layer, Layer::Linear(_) | Layer::Conv2d(_)));
        if !trainable {
            return Err(ModelError::NoLinearLayer);
        }
        Ok(Self {
            layers,
            input: Buffer::new(),
        })
    }

    /// `sizes = [in, hidden..., out]`: linear layers of those widths with `activation`
    /// between them (none after the last), weights drawn by `init` from one stream
    /// seeded with `seed`, layer by layer.
    pub fn from_sizes(
        sizes: &[usize],
        activation: ActivationKind,
        init: Init,
        seed: u64,
    ) -> Result<Self, ModelError> {
        check_sizes::<F>(sizes)?;
        let mut rng = init::rng(seed);
        let mut layers = Vec::new();
        for (index, pair) in sizes.windows(2).enumerate() {
            if index > 0 {
                layers.push(Layer::activation(activation));
            }
            layers.push(Layer::Linear(Linear::new(pair[0], pair[1], init, &mut rng)));
        }
        Self::new(layers)
    }

    /// The layers in order.
    pub fn layers(&self) -> &[Layer<F>] {
        &self.layers
    }

    /// The layers in order, mutable (for example to set weights).
    pub fn layers_mut(&mut self) -> &mut [Layer<F>] {
        &mut self.layers
    }

    /// The linear layers in order.
    pub fn linear_layers(&self) -> impl Iterator<Item = &Linear<F>> {
        self.layers.iter().filter_map(Layer::as_linear)
    }

    /// The linear layers in order, mutable.
    pub fn linear_layers_mut(&mut self) -> impl Iterator<Item = &mut Linear<F>> {
        self.layers.iter_mut().filter_map(Layer::as_linear_mut)
    }

    /// Input width: that of the first layer that fixes one (`C * H * W` for a network
    /// that starts with a convolution).
    pub fn in_features(&self) -> usize {
        self.layers.iter().find_map(Layer::in_width).unwrap_or(0)
    }

    /// Output width (number of classes): that of the last layer that fixes one.
    pub fn out_features(&self) -> usize {
        self.layers
            .iter()
            .rev()
            .find_map(Layer::out_width)
            .unwrap_or(0)
    }

    /// Whether every layer is a linear layer or one of the assignment's activations: the
    /// networks the fused and per-core steps and the shared-model inference handle.
    pub fn is_perceptron(&self) -> bool {
        self.layers.iter().all(Layer::is_assignment_layer)
    }

    /// Switches every layer between training (dropout, batch statistics; the default)
    /// and evaluation (no dropout, running statistics), as PyTorch's `train()`/`eval()`.
    pub fn set_training(&mut self, training: bool) {
        for layer in &mut self.layers {
            layer.set_training(training);
        }
    }

    /// Whether `backward` computes dL/d(input) of the whole network.
    pub fn computes_grad_input(&self) -> bool {
        self.layers.first().is_none_or(Layer::computes_grad_input)
    }

    /// Whether `backward` computes dL/d(input) of the whole network (on by default).
    /// Training turns it off: the first layer's input is data, and that GEMM is wasted.
    pub fn set_compute_grad_input(&mut self, enabled: bool) {
        if let Some(first) = self.layers.first_mut() {
            first.set_compute_grad_input(enabled);
        }
    }

    /// Each batch normalisation layer's running mean, then its running variance
    /// `(C)`, in layer order.
    pub(crate) fn running_statistics(&self) -> impl Iterator<Item = ndarray::ArrayView1<'_, F>> {
        self.layers
            .iter()
            .flat_map(|layer| match layer {
                Layer::BatchNorm(norm) => Some([norm.running_mean(), norm.running_var()]),
                _ => None,
            })
            .flatten()
    }

    /// Copies every parameter and running statistic of `source`, a network of the same
    /// layers (a clone of it), into this one, without allocating.
    pub(crate) fn copy_state_from(&mut self, source: &Self) {
        for (target, source) in self.layers.iter_mut().zip(&source.layers) {
            let copied = target.copy_state_from(source);
            debug_assert!(copied, "the copy's layers are the source's");
        }
    }

    /// `forward` on an input `(batch, in)` that `fill_input` writes in place (straight into
    /// the first linear layer's buffer): how training feeds batches without a copy.
    pub(crate) fn forward_with(
        &mut self,
        batch: usize,
        fill_input: impl FnOnce(ArrayViewMut2<'_, F>),
    ) -> ArrayView2<'_, F> {
        // input: (batch, in) -> logits: (batch, out)
        let width = self.in_features();
        let mut layers = self.layers.iter_mut();
        // Cannot fail: `new` refuses an empty list of layers.
        let mut output = match layers.next().expect("a network has at least one layer") {
            Layer::Linear(first) => first.forward_with(batch, fill_input),
            first => {
                fill_input(self.input.resize(batch, width));
                first.forward(self.input.view())
            }
        };
        for layer in layers.filter(|layer| !layer.passes_through()) {
            output = layer.forward(output);
        }
        output
    }

    /// `backward` fused with a stateless gradient-descent step: every linear layer
    /// computes its input gradient and then updates its weights in place with one GEMM
    /// (see [`Linear::backward_and_step`]); `d_weights` is not written.
    pub(crate) fn backward_and_step(
        &mut self,
        grad_output: ArrayView2<'_, F>,
        update: PlainUpdate<F>,
    ) {
        if !self.is_perceptron() {
            // Only linear layers fuse the update: the others take it after `backward`.
            self.backward(grad_output);
            self.visit_parameters(&mut |parameter: Parameter<'_, F>| {
                update.apply(parameter.key.kind, parameter.value, parameter.grad)
            });
            return;
        }
        // dL/d(logits): (batch, out), back through every layer
        let mut layers = self.layers.iter_mut().rev();
        // Cannot fail: `new` refuses an empty list of layers.
        let last = layers.next().expect("a network has at least one layer");
        let mut grad = step_layer(last, grad_output, update);
        for layer in layers {
            grad = step_layer(layer, grad, update);
        }
    }

    /// The predicted class of each row of `input: (batch, in)`: the argmax of its logits,
    /// computed in evaluation mode (no dropout, running statistics).
    pub fn predict(&self, input: ArrayView2<'_, F>) -> Array1<usize> {
        let mut scratch = Scratch::default();
        let logits = self.infer(input.nrows(), |mut rows| rows.assign(&input), &mut scratch);
        logits.map_axis(Axis(1), |row| argmax(row.iter().copied()))
    }

    /// Bytes the layers' buffers take for batches of `rows` rows: each linear layer keeps
    /// its input, output and input gradient, each activation its output and input
    /// gradient, a convolution its unfolded input and its gradient besides. `None` if the
    /// count overflows.
    pub fn buffer_bytes(&self, rows: usize) -> Option<u64> {
        let mut width = self.in_features() as u64;
        let mut per_row = 0u64;
        for layer in &self.layers {
            let input = width;
            width = layer.out_width().map_or(width, |out| out as u64);
            let values = match layer {
                Layer::Linear(_) => input.checked_mul(2)?.checked_add(width)?,
                Layer::Conv2d(conv) => {
                    let (kh, kw) = conv.kernel_size();
                    let output = conv.output_shape();
                    let columns =
                        (conv.input_shape().channels * kh * kw) as u64 * output.plane() as u64;
                    columns
                        .checked_mul(2)?
                        .checked_add(input.checked_add(width)?.checked_mul(2)?)?
                }
                Layer::Activation(_) | Layer::Pool2d(_) => {
                    input.checked_add(width)?.checked_mul(2)?
                }
                Layer::Flatten(_) => 0,
                Layer::InputActivation(_)
                | Layer::Dropout(_)
                | Layer::BatchNorm(_)
                | Layer::LayerNorm(_) => width.checked_mul(4)?,
            };
            per_row = per_row.checked_add(values)?;
        }
        per_row
            .checked_mul(rows as u64)?
            .checked_mul(std::mem::size_of::<F>() as u64)
    }

    /// Each parameter's number of values, by key.
    pub fn visit_parameters_sizes(
        &mut self,
        sizes: &mut std::collections::BTreeMap<crate::module::ParameterKey, usize>,
    ) {
        self.visit_parameters(&mut |parameter: Parameter<'_, F>| {
            sizes.insert(parameter.key, parameter.value.len());
        });
    }

    /// The number of parameters (weights and biases; running statistics are not
    /// parameters).
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .flat_map(Layer::state_entries)
            .filter(|(name, _)| matches!(*name, "weight" | "bias"))
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum()
    }

    /// `sum W^2` over every linear layer's weights (biases excluded).
    pub fn l2_penalty(&self) -> F {
        self.linear_layers()
            .map(|linear| match linear.weights().as_slice() {
                Some(weights) => sum_of_squares(weights),
                None => linear.weights().iter().map(|&w| w * w).sum::<F>(),
            })
            .fold(F::zero(), |total, layer_sum| total + layer_sum)
    }
}

fn step_layer<'a, F: Float>(
    layer: &'a mut Layer<F>,
    grad_output: ArrayView2<'_, F>,
    update: PlainUpdate<F>,
) -> ArrayView2<'a, F> {
    match layer {
        Layer::Linear(linear) => linear.backward_and_step(grad_output, update),
        other => other.backward(grad_output),
    }
}

impl<F: Float> Module<F> for MultiLayerPerceptron<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        assert_eq!(
            input.ncols(),
            self.in_features(),
            "MultiLayerPerceptron::forward: input has {} features, the network expects {}",
            input.ncols(),
            self.in_features()
        );
        self.forward_with(input.nrows(), |mut buffer| buffer.assign(&input))
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // dL/d(logits): (batch, out) -> dL/d(input): (batch, in), or (0, in) when the
        // input gradient is switched off
        let mut layers = self.layers.iter_mut().rev();
        // Cannot fail: `new` refuses an empty list of layers.
        let last = layers.next().expect("a network has at least one layer");
        let mut grad = last.backward(grad_output);
        for layer in layers.filter(|layer| !layer.passes_through()) {
            grad = layer.backward(grad);
        }
        grad
    }

    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        for (position, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_parameters(&mut |mut parameter: Parameter<'_, F>| {
                parameter.key.layer = position;
                visitor(parameter)
            });
        }
    }
}
