//! Networks from `--layers` specs, and specs from networks: [`build`] makes the layers
//! of a parsed spec for the data's shape, [`describe`] writes a network back as a spec
//! that builds the same layers (what a model file records).

use crate::float::Float;
use crate::init::{self, Init};
use crate::layers::{
    BatchNorm, Conv2d, Dropout, Flatten, ImageShape, InputActivation, Layer, LayerNorm, Linear,
    Pool2d, PoolKind,
};
use crate::limits::{check_memory, product, sum};

use super::spec::{self, ActivationSpec, LayerSpec, Located, Pool, Shape, SpecError};
use super::{ModelError, MultiLayerPerceptron};

/// The network of `layers` (a parsed spec) for examples of shape `input`: weights drawn
/// by `init` from one stream seeded with `seed`, layer by layer in order (biases zero,
/// normalisation scales one), each dropout layer with its own stream derived from
/// `seed` and its position. Shapes and memory are checked before anything is allocated;
/// a spec that does not fit the shape is [`ModelError::Spec`], naming the layer.
pub fn build<F: Float>(
    layers: &[Located],
    input: Shape,
    init: Init,
    seed: u64,
) -> Result<MultiLayerPerceptron<F>, ModelError> {
    let shapes = spec::infer_shapes(layers, input)?;
    let inputs: Vec<Shape> = std::iter::once(input)
        .chain(shapes.iter().copied())
        .collect();
    check_parameter_memory::<F>(layers, &inputs)?;
    let mut rng = init::rng(seed);
    let mut built = Vec::with_capacity(layers.len());
    for (position, (located, &shape)) in layers.iter().zip(&inputs).enumerate() {
        let eps = match located.layer {
            LayerSpec::BatchNorm1d { eps, .. }
            | LayerSpec::BatchNorm2d { eps, .. }
            | LayerSpec::LayerNorm { eps } => Some(eps),
            _ => None,
        };
        if let Some(eps) = eps.filter(|&eps| F::from_f64(eps) <= F::zero()) {
            return Err(SpecError {
                position: located.position,
                token: located.text.clone(),
                message: format!(
                    "eps={eps:e} is 0 in {} (the variance of a constant input would divide by 0)",
                    F::NAME
                ),
            }
            .into());
        }
        let layer = match (&located.layer, shape) {
            (LayerSpec::Linear { bias: false, .. }, _) => {
                return Err(SpecError {
                    position: located.position,
                    token: located.text.clone(),
                    message: "Linear(bias=False) is not supported: nabla's linear layers \
                              always learn a bias"
                        .into(),
                }
                .into())
            }
            (LayerSpec::Linear { out_features, .. }, _) => {
                Layer::Linear(Linear::new(shape.len(), *out_features, init, &mut rng))
            }
            (
                LayerSpec::Conv2d {
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    bias,
                },
                _,
            ) => Layer::Conv2d(Conv2d::new(
                image(shape),
                *out_channels,
                *kernel,
                *stride,
                *padding,
                *bias,
                init,
                &mut rng,
            )),
            (LayerSpec::MaxPool2d(pool), _) => Layer::Pool2d(Pool2d::new(
                PoolKind::Max,
                image(shape),
                pool.kernel,
                pool.stride,
                pool.padding,
            )),
            (LayerSpec::AvgPool2d(pool), _) => Layer::Pool2d(Pool2d::new(
                PoolKind::Average,
                image(shape),
                pool.kernel,
                pool.stride,
                pool.padding,
            )),
            (LayerSpec::Flatten, _) => Layer::Flatten(Flatten::new()),
            (LayerSpec::Dropout { p }, _) => {
                Layer::Dropout(Dropout::new(*p, dropout_seed(seed, position)))
            }
            (LayerSpec::BatchNorm1d { eps, momentum }, _) => {
                Layer::BatchNorm(BatchNorm::new(shape.len(), 1, *eps, *momentum))
            }
            (LayerSpec::BatchNorm2d { eps, momentum }, _) => {
                let image = image(shape);
                Layer::BatchNorm(BatchNorm::new(
                    image.channels,
                    image.plane(),
                    *eps,
                    *momentum,
                ))
            }
            (LayerSpec::LayerNorm { eps }, _) => {
                Layer::LayerNorm(LayerNorm::new(shape.len(), *eps))
            }
            (LayerSpec::Activation(activation), _) => activation_layer(*activation),
        };
        built.push(layer);
    }
    MultiLayerPerceptron::new(built)
}

/// The seed of the dropout layer at `position` in a network built with `seed`: a
/// SplitMix64 step, so that neighbouring layers and seeds get unrelated streams.
pub(crate) fn dropout_seed(seed: u64, position: usize) -> u64 {
    let mut z = seed.wrapping_add((position as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn activation_layer<F: Float>(activation: ActivationSpec) -> Layer<F> {
    match activation {
        ActivationSpec::Output(kind) => Layer::activation(kind),
        ActivationSpec::Input(kind) => Layer::InputActivation(InputActivation::new(kind)),
    }
}

/// `shape` as an image (`infer_shapes` has checked that it is one where one is needed).
fn image(shape: Shape) -> ImageShape {
    match shape {
        Shape::Image {
            channels,
            height,
            width,
        } => ImageShape::new(channels, height, width),
        Shape::Flat(features) => ImageShape::new(features, 1, 1),
    }
}

/// Checks that the parameters and their gradients (two copies) and the `f64` draw of
/// the largest weight fit in memory, before any layer is allocated.
fn check_parameter_memory<F: Float>(
    layers: &[Located],
    inputs: &[Shape],
) -> Result<(), ModelError> {
    let mut counts = Vec::new();
    for (located, &shape) in layers.iter().zip(inputs) {
        let count = match &located.layer {
            LayerSpec::Linear { out_features, .. } => sum([
                product(&[shape.len(), *out_features]),
                Some(*out_features as u64),
            ]),
            LayerSpec::Conv2d {
                out_channels,
                kernel,
                ..
            } => {
                let fan_in = product(&[image(shape).channels, kernel.0, kernel.1]);
                sum([
                    fan_in.and_then(|fan_in| fan_in.checked_mul(*out_channels as u64)),
                    Some(*out_channels as u64),
                ])
            }
            LayerSpec::BatchNorm1d { .. } | LayerSpec::LayerNorm { .. } => {
                product(&[shape.len(), 4])
            }
            LayerSpec::BatchNorm2d { .. } => product(&[image(shape).channels, 4]),
            _ => Some(0),
        };
        counts.push(count);
    }
    let float = std::mem::size_of::<F>() as u64;
    let total = sum(counts.iter().copied());
    let largest = counts
        .iter()
        .copied()
        .try_fold(0u64, |m, c| Some(m.max(c?)));
    let bytes = sum([
        total.and_then(|t| t.checked_mul(2 * float)),
        largest.and_then(|l| l.checked_mul(8)),
    ]);
    check_memory(
        format!("the network's parameters and gradients ({})", F::NAME),
        bytes,
    )?;
    let limit = i32::MAX as u64;
    if let Some(width) = inputs
        .iter()
        .map(|&shape| shape.len() as u64)
        .find(|&w| w > limit)
    {
        return Err(ModelError::WidthTooLarge {
            width: width as usize,
            limit: limit as usize,
        });
    }
    Ok(())
}

/// `model` written as a `--layers` spec that [`build`] turns back into the same layers
/// (PyTorch's names, every argument explicit), with the shape of the examples it takes.
pub fn describe<F: Float>(model: &MultiLayerPerceptron<F>) -> (String, Shape) {
    let items: Vec<String> = model
        .layers()
        .iter()
        .map(|layer| describe_layer(layer).to_string())
        .collect();
    (items.join(", "), input_shape(model))
}

/// The spec of one built layer (its input widths are the network's to infer).
fn describe_layer<F: Float>(layer: &Layer<F>) -> LayerSpec {
    let pool = |pool: &Pool2d<F>| Pool {
        kernel: pool.kernel_size(),
        stride: pool.stride(),
        padding: pool.padding(),
    };
    match layer {
        Layer::Linear(linear) => LayerSpec::Linear {
            out_features: linear.out_features(),
            bias: true,
        },
        Layer::Conv2d(conv) => LayerSpec::Conv2d {
            out_channels: conv.output_shape().channels,
            kernel: conv.kernel_size(),
            stride: conv.stride(),
            padding: conv.padding(),
            bias: conv.bias().is_some(),
        },
        Layer::Pool2d(layer) => match layer.kind() {
            PoolKind::Max => LayerSpec::MaxPool2d(pool(layer)),
            PoolKind::Average => LayerSpec::AvgPool2d(pool(layer)),
        },
        Layer::Flatten(_) => LayerSpec::Flatten,
        Layer::Dropout(dropout) => LayerSpec::Dropout { p: dropout.p() },
        Layer::BatchNorm(norm) if norm.spatial() == 1 => LayerSpec::BatchNorm1d {
            eps: norm.eps(),
            momentum: norm.momentum(),
        },
        Layer::BatchNorm(norm) => LayerSpec::BatchNorm2d {
            eps: norm.eps(),
            momentum: norm.momentum(),
        },
        Layer::LayerNorm(norm) => LayerSpec::LayerNorm { eps: norm.eps() },
        Layer::Activation(activation) => {
            LayerSpec::Activation(ActivationSpec::Output(activation.kind()))
        }
        Layer::InputActivation(activation) => {
            LayerSpec::Activation(ActivationSpec::Input(activation.kind()))
        }
    }
}

/// The shape of the examples `model` takes: the image of its first spatial layer, or
/// its input width. A network whose only spatial layers are batch normalisations sees
/// each channel as a `(H * W) x 1` image (the same layers).
fn input_shape<F: Float>(model: &MultiLayerPerceptron<F>) -> Shape {
    let image = |shape: ImageShape| Shape::Image {
        channels: shape.channels,
        height: shape.height,
        width: shape.width,
    };
    for layer in model.layers() {
        match layer {
            Layer::Conv2d(conv) => return image(conv.input_shape()),
            Layer::Pool2d(pool) => return image(pool.input_shape()),
            Layer::BatchNorm(norm) if norm.spatial() > 1 => {
                return image(ImageShape::new(norm.channels(), norm.spatial(), 1))
            }
            Layer::Linear(_) | Layer::LayerNorm(_) | Layer::BatchNorm(_) | Layer::Flatten(_) => {
                break
            }
            _ => {}
        }
    }
    Shape::Flat(model.in_features())
}
