//! A layer's entries in PyTorch's `state_dict`: the parameters, and for batch
//! normalisation the running statistics and the batch count, each with the name and the
//! shape PyTorch gives it (a convolution's weight is `(C_out, C_in, kh, kw)`).

use ndarray::ArrayViewMut1;

use crate::float::Float;

use super::Layer;

/// The values of one `state_dict` entry.
#[derive(Clone, Debug, PartialEq)]
pub enum StateValues<F> {
    /// Floats in row-major order.
    Floats(Vec<F>),
    /// An integer count (BatchNorm's `num_batches_tracked`, an int64 scalar in PyTorch).
    Count(u64),
}

impl<F: Float> Layer<F> {
    /// The layer's `state_dict` entries in PyTorch's order: `(name, shape)`, for example
    /// `("weight", [32, 1, 3, 3])`. Empty for a layer without state.
    pub fn state_entries(&self) -> Vec<(&'static str, Vec<usize>)> {
        match self {
            Layer::Linear(linear) => vec![
                ("weight", vec![linear.out_features(), linear.in_features()]),
                ("bias", vec![linear.out_features()]),
            ],
            Layer::Conv2d(conv) => {
                let (input, output, (kh, kw)) =
                    (conv.input_shape(), conv.output_shape(), conv.kernel_size());
                let mut entries = vec![("weight", vec![output.channels, input.channels, kh, kw])];
                if conv.bias().is_some() {
                    entries.push(("bias", vec![output.channels]));
                }
                entries
            }
            Layer::BatchNorm(norm) => {
                let channels = vec![norm.channels()];
                vec![
                    ("weight", channels.clone()),
                    ("bias", channels.clone()),
                    ("running_mean", channels.clone()),
                    ("running_var", channels),
                    ("num_batches_tracked", vec![]),
                ]
            }
            Layer::LayerNorm(norm) => vec![
                ("weight", vec![norm.features()]),
                ("bias", vec![norm.features()]),
            ],
            Layer::Activation(_)
            | Layer::InputActivation(_)
            | Layer::Pool2d(_)
            | Layer::Flatten(_)
            | Layer::Dropout(_) => Vec::new(),
        }
    }

    /// The values of the entry `name` (one of [`Layer::state_entries`]).
    pub fn state_values(&self, name: &str) -> Option<StateValues<F>> {
        let floats = |values: ndarray::ArrayView1<'_, F>| {
            Some(StateValues::Floats(values.iter().copied().collect()))
        };
        match (self, name) {
            (Layer::Linear(linear), "weight") => Some(StateValues::Floats(
                linear.weights().iter().copied().collect(),
            )),
            (Layer::Linear(linear), "bias") => floats(linear.bias()),
            (Layer::Conv2d(conv), "weight") => {
                Some(StateValues::Floats(conv.weight().iter().copied().collect()))
            }
            (Layer::Conv2d(conv), "bias") => conv.bias().and_then(floats),
            (Layer::BatchNorm(norm), "weight") => floats(norm.weight()),
            (Layer::BatchNorm(norm), "bias") => floats(norm.bias()),
            (Layer::BatchNorm(norm), "running_mean") => floats(norm.running_mean()),
            (Layer::BatchNorm(norm), "running_var") => floats(norm.running_var()),
            (Layer::BatchNorm(norm), "num_batches_tracked") => {
                Some(StateValues::Count(norm.num_batches_tracked()))
            }
            (Layer::LayerNorm(norm), "weight") => floats(norm.weight()),
            (Layer::LayerNorm(norm), "bias") => floats(norm.bias()),
            _ => None,
        }
    }

    /// Sets the entry `name` from `values` (already checked to have the entry's shape);
    /// `false` if the layer has no such entry or the values are of the other kind.
    pub fn set_state_values(&mut self, name: &str, values: StateValues<F>) -> bool {
        let fill = |target: Option<ArrayViewMut1<'_, F>>, values: &StateValues<F>| match (
            target, values,
        ) {
            (Some(mut target), StateValues::Floats(values)) if values.len() == target.len() => {
                target
                    .iter_mut()
                    .zip(values)
                    .for_each(|(slot, &value)| *slot = value);
                true
            }
            _ => false,
        };
        match (self, name) {
            (Layer::Linear(linear), "weight") => fill(flat(linear.weights_mut()), &values),
            (Layer::Linear(linear), "bias") => fill(Some(linear.bias_mut()), &values),
            (Layer::Conv2d(conv), "weight") => fill(flat(conv.weight_mut()), &values),
            (Layer::Conv2d(conv), "bias") => fill(conv.bias_mut(), &values),
            (Layer::BatchNorm(norm), "weight") => fill(Some(norm.weight_mut()), &values),
            (Layer::BatchNorm(norm), "bias") => fill(Some(norm.bias_mut()), &values),
            (Layer::BatchNorm(norm), "running_mean") => {
                fill(Some(norm.running_mean_mut()), &values)
            }
            (Layer::BatchNorm(norm), "running_var") => fill(Some(norm.running_var_mut()), &values),
            (Layer::BatchNorm(norm), "num_batches_tracked") => match values {
                StateValues::Count(count) => {
                    norm.set_num_batches_tracked(count);
                    true
                }
                StateValues::Floats(_) => false,
            },
            (Layer::LayerNorm(norm), "weight") => fill(Some(norm.weight_mut()), &values),
            (Layer::LayerNorm(norm), "bias") => fill(Some(norm.bias_mut()), &values),
            _ => false,
        }
    }
}

/// A row-major matrix as one row (parameters are stored standard-layout).
fn flat<F>(view: ndarray::ArrayViewMut2<'_, F>) -> Option<ArrayViewMut1<'_, F>> {
    let len = view.len();
    view.into_shape_with_order(len).ok()
}

impl<F: Float> Layer<F> {
    /// Copies the parameters and running statistics of `source`, a layer of the same
    /// kind and shape (from a clone of this network), without allocating; `false` if the
    /// layers differ.
    pub(crate) fn copy_state_from(&mut self, source: &Layer<F>) -> bool {
        match (self, source) {
            (Layer::Linear(target), Layer::Linear(source)) => {
                target.weights_mut().assign(&source.weights());
                target.bias_mut().assign(&source.bias());
            }
            (Layer::Conv2d(target), Layer::Conv2d(source)) => {
                target.weight_mut().assign(&source.weight());
                if let (Some(mut bias), Some(from)) = (target.bias_mut(), source.bias()) {
                    bias.assign(&from);
                }
            }
            (Layer::BatchNorm(target), Layer::BatchNorm(source)) => {
                target.weight_mut().assign(&source.weight());
                target.bias_mut().assign(&source.bias());
                target.running_mean_mut().assign(&source.running_mean());
                target.running_var_mut().assign(&source.running_var());
                target.set_num_batches_tracked(source.num_batches_tracked());
            }
            (Layer::LayerNorm(target), Layer::LayerNorm(source)) => {
                target.weight_mut().assign(&source.weight());
                target.bias_mut().assign(&source.bias());
            }
            (target, source) => return target.state_entries() == source.state_entries(),
        }
        true
    }
}
