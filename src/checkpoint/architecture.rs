//! A model's architecture as the model files describe it: for a perceptron the layers
//! in order, with the activations named as [`ActivationKind`] names them; for a network
//! with other layers, its `--layers` spec and the shape of its examples.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::float::Float;
use crate::init::Init;
use crate::layers::{ActivationKind, Layer, Linear};
use crate::names::UnknownName;
use crate::network::spec::{self, Shape};
use crate::network::{self as network, check_sizes, ModelError, MultiLayerPerceptron};

/// One layer as a model file records it: `{"type": "linear", "in_features": 784,
/// "out_features": 256}` or `{"type": "relu"}` (any activation name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawLayer", into = "RawLayer")]
pub enum LayerSpec {
    /// A linear layer `(in -> out)`.
    Linear {
        /// Input width.
        in_features: usize,
        /// Output width.
        out_features: usize,
    },
    /// An elementwise activation.
    Activation(ActivationKind),
}

/// A layer description that names no known layer.
#[derive(Debug, Error)]
pub enum LayerSpecError {
    /// A type that is neither `linear` nor an activation.
    #[error("layer type: {0}")]
    UnknownType(#[source] UnknownName),
    /// A linear layer without its widths.
    #[error("a linear layer needs in_features and out_features")]
    MissingWidth,
}

/// The serialised form of a [`LayerSpec`].
#[derive(Serialize, Deserialize)]
struct RawLayer {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    in_features: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    out_features: Option<usize>,
}

const LINEAR: &str = "linear";

impl TryFrom<RawLayer> for LayerSpec {
    type Error = LayerSpecError;

    fn try_from(raw: RawLayer) -> Result<Self, Self::Error> {
        if raw.kind.eq_ignore_ascii_case(LINEAR) {
            return match (raw.in_features, raw.out_features) {
                (Some(in_features), Some(out_features)) => Ok(LayerSpec::Linear {
                    in_features,
                    out_features,
                }),
                _ => Err(LayerSpecError::MissingWidth),
            };
        }
        raw.kind
            .parse()
            .map(LayerSpec::Activation)
            .map_err(|mut error: UnknownName| {
                error.expected = format!("{LINEAR} or an activation: {}", error.expected);
                LayerSpecError::UnknownType(error)
            })
    }
}

impl From<LayerSpec> for RawLayer {
    fn from(spec: LayerSpec) -> Self {
        match spec {
            LayerSpec::Linear {
                in_features,
                out_features,
            } => RawLayer {
                kind: LINEAR.into(),
                in_features: Some(in_features),
                out_features: Some(out_features),
            },
            LayerSpec::Activation(kind) => RawLayer {
                kind: kind.name().into(),
                in_features: None,
                out_features: None,
            },
        }
    }
}

/// What is wrong with an architecture description.
#[derive(Debug, Error)]
pub enum ArchitectureProblem {
    /// The JSON does not parse or has the wrong fields.
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    /// A `.safetensors` file without nabla's metadata.
    #[error("no '{0}' in the file's __metadata__ (not written by nabla? load it with --init-from into a model built from flags)")]
    MissingMetadata(&'static str),
    /// Another format name than `nabla-mlp`.
    #[error("format '{0}', expected 'nabla-mlp'")]
    Format(String),
    /// Another float type than `f32` or `f64`.
    #[error("dtype '{0}', expected 'f32' or 'f64'")]
    Dtype(String),
}

/// The format name in every model file.
pub const FORMAT: &str = "nabla-mlp";

/// What `nabla eval` and `nabla predict` need besides the weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    /// Always `"nabla-mlp"`.
    pub format: String,
    /// The float type the weights were saved in (`"f32"` or `"f64"`).
    pub dtype: String,
    /// A perceptron's layers in order; their positions are the parameter names'
    /// prefixes. Empty for a network described by `spec`.
    #[serde(default)]
    pub layers: Vec<LayerSpec>,
    /// The `--layers` spec of a network with layers beyond the perceptron's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    /// With `spec`: the shape of one example, `[features]` or `[channels, height, width]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Vec<usize>>,
}

impl Architecture {
    /// The architecture of `model`.
    pub fn of<F: Float>(model: &MultiLayerPerceptron<F>) -> Self {
        if !model.is_perceptron() {
            let (spec, input) = network::describe(model);
            return Self {
                format: FORMAT.into(),
                dtype: F::NAME.into(),
                layers: Vec::new(),
                spec: Some(spec),
                input: Some(match input {
                    Shape::Flat(features) => vec![features],
                    Shape::Image {
                        channels,
                        height,
                        width,
                    } => vec![channels, height, width],
                }),
            };
        }
        let layers = model
            .layers()
            .iter()
            .map(|layer| match layer {
                Layer::Linear(linear) => LayerSpec::Linear {
                    in_features: linear.in_features(),
                    out_features: linear.out_features(),
                },
                Layer::Activation(activation) => LayerSpec::Activation(activation.kind()),
                // Cannot happen: other networks are described by their spec above.
                _ => unreachable!("a perceptron holds linear layers and activations"),
            })
            .collect();
        Self {
            format: FORMAT.into(),
            dtype: F::NAME.into(),
            layers,
            spec: None,
            input: None,
        }
    }

    /// Checks the format name and the float type.
    pub(crate) fn check(&self) -> Result<(), ArchitectureProblem> {
        if self.format != FORMAT {
            return Err(ArchitectureProblem::Format(self.format.clone()));
        }
        if self.dtype != "f32" && self.dtype != "f64" {
            return Err(ArchitectureProblem::Dtype(self.dtype.clone()));
        }
        Ok(())
    }

    /// A zero-weight network of this architecture (weights are loaded next). The widths
    /// are checked to chain and to fit in memory before any layer is allocated.
    pub(crate) fn build<F: Float>(&self) -> Result<MultiLayerPerceptron<F>, ModelError> {
        if let Some(text) = &self.spec {
            let input = match self.input.as_deref() {
                Some(&[features]) => Shape::Flat(features),
                Some(&[channels, height, width]) => Shape::Image {
                    channels,
                    height,
                    width,
                },
                _ => {
                    return Err(ModelError::Spec(spec::SpecError {
                        position: 0,
                        token: format!("{:?}", self.input),
                        message: "the input shape must be [features] or [channels, height,                                   width]"
                            .into(),
                    }))
                }
            };
            return network::build(&spec::parse(text)?, input, Init::Zeros, 0);
        }
        let mut widths: Vec<usize> = Vec::new();
        for (index, spec) in self.layers.iter().enumerate() {
            if let LayerSpec::Linear {
                in_features,
                out_features,
            } = *spec
            {
                match widths.last() {
                    Some(&expected) if expected != in_features => {
                        return Err(ModelError::WidthMismatch {
                            index,
                            expected,
                            found: in_features,
                        })
                    }
                    Some(_) => {}
                    None => widths.push(in_features),
                }
                widths.push(out_features);
            }
        }
        if widths.is_empty() {
            return Err(if self.layers.is_empty() {
                ModelError::Empty
            } else {
                ModelError::NoLinearLayer
            });
        }
        check_sizes::<F>(&widths)?;
        let layers = self
            .layers
            .iter()
            .map(|spec| match *spec {
                LayerSpec::Linear {
                    in_features,
                    out_features,
                } => Layer::Linear(Linear::from_params(
                    Array2::zeros((out_features, in_features)),
                    Array1::zeros(out_features),
                )),
                LayerSpec::Activation(kind) => Layer::activation(kind),
            })
            .collect();
        MultiLayerPerceptron::new(layers)
    }
}
