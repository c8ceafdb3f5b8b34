//! The `--layers` language: a network written as PyTorch writes an `nn.Sequential`,
//! `"Conv2d(32, 3, padding=1), ReLU, MaxPool2d(2), Flatten, Linear(128), ReLU,
//! Dropout(0.25), Linear(10)"`, parsed into [`LayerSpec`]s and checked against the
//! data's shape ([`infer_shapes`]).
//!
//! Names, keyword arguments and defaults are PyTorch's. The first positional argument is
//! the layer's output width (`out_features`, `out_channels`); input widths come from the
//! shape before the layer, so `BatchNorm1d`, `BatchNorm2d` and `LayerNorm` need no
//! argument (one given must equal the width they receive). `inplace=` is accepted and
//! has no effect. Every error names the token at fault by its position in the text.
//!
//! This is the grammar and the shape rules of issue 22's layers; networks are built from
//! the specs as each layer kind lands.

use std::fmt;

use thiserror::Error;

use crate::layers::{ActivationKind, InputActivationKind};

/// One layer of a `--layers` spec, with PyTorch's arguments (defaults filled in).
#[derive(Clone, Debug, PartialEq)]
pub enum LayerSpec {
    /// `Linear(out_features, bias=True)`.
    Linear {
        /// Output features.
        out_features: usize,
        /// Whether the layer adds a bias.
        bias: bool,
    },
    /// `Conv2d(out_channels, kernel_size, stride=1, padding=0, bias=True)`.
    Conv2d {
        /// Output channels.
        out_channels: usize,
        /// `kernel_size` as `(rows, columns)`.
        kernel: (usize, usize),
        /// The step between windows.
        stride: (usize, usize),
        /// Zeros added on each side.
        padding: (usize, usize),
        /// Whether the layer adds a bias per channel.
        bias: bool,
    },
    /// `MaxPool2d(kernel_size, stride=kernel_size, padding=0)`.
    MaxPool2d(Pool),
    /// `AvgPool2d(kernel_size, stride=kernel_size, padding=0)`.
    AvgPool2d(Pool),
    /// `Flatten()`: `(C, H, W)` to `C * H * W` features.
    Flatten,
    /// `Dropout(p=0.5)`.
    Dropout {
        /// The probability of zeroing an element in training.
        p: f64,
    },
    /// `BatchNorm1d(eps=1e-5, momentum=0.1)` over features.
    BatchNorm1d {
        /// Added to the variance.
        eps: f64,
        /// The running statistics' update rate.
        momentum: f64,
    },
    /// `BatchNorm2d(eps=1e-5, momentum=0.1)` over channels.
    BatchNorm2d {
        /// Added to the variance.
        eps: f64,
        /// The running statistics' update rate.
        momentum: f64,
    },
    /// `LayerNorm(eps=1e-5)` over the features of each row.
    LayerNorm {
        /// Added to the variance.
        eps: f64,
    },
    /// An elementwise activation.
    Activation(ActivationSpec),
}

/// A pooling window: `kernel`, `stride` and `padding` as `(rows, columns)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// The window.
    pub kernel: (usize, usize),
    /// The step between windows.
    pub stride: (usize, usize),
    /// Implicit padding on each side.
    pub padding: (usize, usize),
}

/// The activations of `--layers`: the layers' own kinds, with PyTorch's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationSpec {
    /// `ReLU`, `Sigmoid`, `Tanh`, `Identity`: derivatives from the output.
    Output(ActivationKind),
    /// `LeakyReLU(negative_slope=0.01)`, `GELU(approximate='none'|'tanh')`, `SiLU`,
    /// `ELU(alpha=1.0)`: derivatives from the input.
    Input(InputActivationKind),
}

/// The shape of one example between two layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A vector of features.
    Flat(usize),
    /// An image: channels, height, width.
    Image {
        /// Channels.
        channels: usize,
        /// Height.
        height: usize,
        /// Width.
        width: usize,
    },
}

impl fmt::Display for LayerSpec {
    /// The layer as PyTorch writes it, every argument explicit: what [`parse`] reads
    /// back as the same layer (the canonical form that model files and resumes compare).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pair = |(a, b): (usize, usize)| format!("({a}, {b})");
        let python = |flag: bool| if flag { "True" } else { "False" };
        match self {
            LayerSpec::Linear {
                out_features,
                bias: true,
            } => write!(f, "Linear({out_features})"),
            LayerSpec::Linear {
                out_features,
                bias: false,
            } => write!(f, "Linear({out_features}, bias=False)"),
            LayerSpec::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                bias,
            } => write!(
                f,
                "Conv2d({out_channels}, kernel_size={}, stride={}, padding={}, bias={})",
                pair(*kernel),
                pair(*stride),
                pair(*padding),
                python(*bias)
            ),
            LayerSpec::MaxPool2d(pool) | LayerSpec::AvgPool2d(pool) => write!(
                f,
                "{}(kernel_size={}, stride={}, padding={})",
                if matches!(self, LayerSpec::MaxPool2d(_)) {
                    "MaxPool2d"
                } else {
                    "AvgPool2d"
                },
                pair(pool.kernel),
                pair(pool.stride),
                pair(pool.padding)
            ),
            LayerSpec::Flatten => f.write_str("Flatten"),
            LayerSpec::Dropout { p } => write!(f, "Dropout(p={p:?})"),
            LayerSpec::BatchNorm1d { eps, momentum } => {
                write!(f, "BatchNorm1d(eps={eps:?}, momentum={momentum:?})")
            }
            LayerSpec::BatchNorm2d { eps, momentum } => {
                write!(f, "BatchNorm2d(eps={eps:?}, momentum={momentum:?})")
            }
            LayerSpec::LayerNorm { eps } => write!(f, "LayerNorm(eps={eps:?})"),
            LayerSpec::Activation(activation) => match activation {
                ActivationSpec::Output(ActivationKind::Relu) => f.write_str("ReLU"),
                ActivationSpec::Output(ActivationKind::Sigmoid) => f.write_str("Sigmoid"),
                ActivationSpec::Output(ActivationKind::Tanh) => f.write_str("Tanh"),
                ActivationSpec::Output(ActivationKind::Identity) => f.write_str("Identity"),
                ActivationSpec::Input(InputActivationKind::LeakyRelu { negative_slope }) => {
                    write!(f, "LeakyReLU(negative_slope={negative_slope:?})")
                }
                ActivationSpec::Input(InputActivationKind::Gelu { tanh: false }) => {
                    f.write_str("GELU")
                }
                ActivationSpec::Input(InputActivationKind::Gelu { tanh: true }) => {
                    f.write_str("GELU(approximate='tanh')")
                }
                ActivationSpec::Input(InputActivationKind::Silu) => f.write_str("SiLU"),
                ActivationSpec::Input(InputActivationKind::Elu { alpha }) => {
                    write!(f, "ELU(alpha={alpha:?})")
                }
            },
        }
    }
}

/// `layers` written back as one spec in the canonical form (see [`LayerSpec`]'s
/// `Display`): two specs of the same layers give the same text, whatever their spacing
/// or the arguments left to their defaults.
pub fn canonical(layers: &[Located]) -> String {
    layers
        .iter()
        .map(|located| located.layer.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Shape {
    /// The number of values in one example: the features, or `C * H * W`.
    pub fn len(&self) -> usize {
        match *self {
            Shape::Flat(features) => features,
            Shape::Image {
                channels,
                height,
                width,
            } => channels * height * width,
        }
    }

    /// Whether an example holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Flat(features) => write!(f, "{features} features"),
            Shape::Image {
                channels,
                height,
                width,
            } => write!(f, "{channels}x{height}x{width}"),
        }
    }
}

/// A spec that cannot be read or does not fit the data: what is wrong and where.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message} (at character {position}: `{token}`)")]
pub struct SpecError {
    /// The byte offset of the token at fault in the spec.
    pub position: usize,
    /// The token.
    pub token: String,
    /// What is wrong, in words.
    pub message: String,
}

/// A parsed layer and where it was written (for errors about shapes).
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    /// The layer.
    pub layer: LayerSpec,
    /// Its name's byte offset in the spec.
    pub position: usize,
    /// Its text, name and arguments.
    pub text: String,
}

/// Parses a `--layers` spec: comma-separated layers, each a name with optional
/// arguments in parentheses.
pub fn parse(spec: &str) -> Result<Vec<Located>, SpecError> {
    let mut items = split_top_level(spec)?;
    if items.iter().all(|(_, text)| text.trim().is_empty()) {
        return Err(error(0, spec, "the spec has no layers"));
    }
    // A trailing comma, as Python allows in `nn.Sequential(a, b,)`.
    if items.len() > 1 && items[items.len() - 1].1.trim().is_empty() {
        items.pop();
    }
    items
        .into_iter()
        .map(|(start, text)| {
            let trimmed = text.trim_start();
            let position = start + (text.len() - trimmed.len());
            let text = trimmed.trim_end();
            if text.is_empty() {
                // The comma after the empty item (the first) or before it.
                let comma = if start == 0 {
                    text_end(spec, 0)
                } else {
                    start - 1
                };
                return Err(error(comma, ",", "an empty layer between two commas"));
            }
            let layer = parse_layer(position, text)?;
            Ok(Located {
                layer,
                position,
                text: text.to_string(),
            })
        })
        .collect()
}

/// The shape after each layer, from the data's `input` shape; the last is the network's
/// output. Errors name the layer that does not fit.
pub fn infer_shapes(layers: &[Located], input: Shape) -> Result<Vec<Shape>, SpecError> {
    let mut shape = input;
    let mut shapes = Vec::with_capacity(layers.len());
    for located in layers {
        let at = |message: String| error(located.position, &located.text, &message);
        shape = match (&located.layer, shape) {
            (LayerSpec::Linear { out_features, .. }, Shape::Flat(_)) => Shape::Flat(*out_features),
            (LayerSpec::Linear { .. }, image) => {
                return Err(at(format!(
                    "Linear needs features but receives an image ({image}): add Flatten before it"
                )))
            }
            (
                LayerSpec::Flatten,
                Shape::Image {
                    channels,
                    height,
                    width,
                },
            ) => Shape::Flat(channels * height * width),
            (LayerSpec::Flatten, flat) => flat,
            (
                LayerSpec::Conv2d {
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    ..
                },
                Shape::Image { height, width, .. },
            ) => {
                let (height, width) = window_output((height, width), *kernel, *stride, *padding)
                    .ok_or_else(|| {
                        at(format!("the {kernel:?} kernel is larger than its padded {height}x{width} input"))
                    })?;
                Shape::Image {
                    channels: *out_channels,
                    height,
                    width,
                }
            }
            (
                LayerSpec::MaxPool2d(pool) | LayerSpec::AvgPool2d(pool),
                Shape::Image {
                    channels,
                    height,
                    width,
                },
            ) => {
                if 2 * pool.padding.0 > pool.kernel.0 || 2 * pool.padding.1 > pool.kernel.1 {
                    return Err(at(
                        "padding must be at most half the kernel size".to_string()
                    ));
                }
                let (height, width) =
                    window_output((height, width), pool.kernel, pool.stride, pool.padding)
                        .ok_or_else(|| {
                            at(format!(
                                "the {:?} window is larger than its {height}x{width} input",
                                pool.kernel
                            ))
                        })?;
                Shape::Image {
                    channels,
                    height,
                    width,
                }
            }
            (
                LayerSpec::Conv2d { .. }
                | LayerSpec::MaxPool2d(_)
                | LayerSpec::AvgPool2d(_)
                | LayerSpec::BatchNorm2d { .. },
                flat @ Shape::Flat(_),
            ) => return Err(at(format!("this layer needs an image but receives {flat}"))),
            (
                LayerSpec::BatchNorm1d { .. } | LayerSpec::LayerNorm { .. },
                image @ Shape::Image { .. },
            ) => {
                return Err(at(format!(
                "this layer needs features but receives an image ({image}): add Flatten before it"
            )))
            }
            (LayerSpec::BatchNorm2d { .. }, image)
            | (LayerSpec::BatchNorm1d { .. } | LayerSpec::LayerNorm { .. }, image)
            | (LayerSpec::Dropout { .. } | LayerSpec::Activation(_), image) => image,
        };
        if let Some(width) = declared_width(located) {
            let received = match shapes.last().copied().unwrap_or(input) {
                Shape::Flat(features) => features,
                Shape::Image { channels, .. } => channels,
            };
            if width != received {
                return Err(at(format!(
                    "declares {width} features but receives {received}"
                )));
            }
        }
        shapes.push(shape);
    }
    Ok(shapes)
}

/// The offset of the first comma at or after `from` (an empty first item ends there).
fn text_end(spec: &str, from: usize) -> usize {
    spec[from..]
        .find(',')
        .map_or(spec.len(), |comma| from + comma)
}

/// `(out_h, out_w)` of a window sliding over `(h, w)`, or `None` if it does not fit.
fn window_output(
    (height, width): (usize, usize),
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
) -> Option<(usize, usize)> {
    let along = |size: usize, kernel: usize, stride: usize, padding: usize| {
        (size + 2 * padding)
            .checked_sub(kernel)
            .map(|room| room / stride + 1)
    };
    Some((
        along(height, kernel.0, stride.0, padding.0)?,
        along(width, kernel.1, stride.1, padding.1)?,
    ))
}

/// The width a normalisation layer was written with (`BatchNorm1d(128)`), if any.
fn declared_width(located: &Located) -> Option<usize> {
    let (_, arguments) = located.text.split_once('(')?;
    match located.layer {
        LayerSpec::BatchNorm1d { .. }
        | LayerSpec::BatchNorm2d { .. }
        | LayerSpec::LayerNorm { .. } => {
            let first = arguments.trim_end_matches(')').split(',').next()?.trim();
            (!first.contains('=')).then(|| first.parse().ok()).flatten()
        }
        _ => None,
    }
}

fn error(position: usize, token: &str, message: &str) -> SpecError {
    SpecError {
        position,
        token: token.to_string(),
        message: message.to_string(),
    }
}

/// The spec cut at commas outside parentheses: `(start, text)` per item.
fn split_top_level(spec: &str) -> Result<Vec<(usize, &str)>, SpecError> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (index, character) in spec.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| error(index, ")", "a `)` without its `(`"))?;
            }
            ',' if depth == 0 => {
                items.push((start, &spec[start..index]));
                start = index + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        let open = spec.rfind('(').unwrap_or(0);
        return Err(error(open, "(", "a `(` without its `)`"));
    }
    items.push((start, &spec[start..]));
    Ok(items)
}

/// A value written as an argument.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Number(f64),
    Pair(f64, f64),
    Text(String),
    Bool(bool),
    None,
}

/// One argument: its keyword (or `None` for a positional one), value and position.
struct Argument {
    keyword: Option<String>,
    value: Value,
    position: usize,
    text: String,
}

/// The arguments of one layer, consumed by name as its constructor reads them.
struct Arguments<'a> {
    layer: &'a str,
    position: usize,
    positional: Vec<Argument>,
    keywords: Vec<Argument>,
}

impl Arguments<'_> {
    /// The argument at `index` positionally or by `keyword`.
    fn take(&mut self, index: usize, keyword: &str) -> Result<Option<Argument>, SpecError> {
        let by_keyword = self
            .keywords
            .iter()
            .position(|argument| argument.keyword.as_deref() == Some(keyword))
            .map(|found| self.keywords.remove(found));
        let by_position = (index < self.positional.len())
            .then(|| std::mem::replace(&mut self.positional[index], placeholder()))
            .filter(|argument| argument.value != Value::None || !argument.text.is_empty());
        match (by_position, by_keyword) {
            (Some(_), Some(twice)) => Err(error(
                twice.position,
                &twice.text,
                &format!("{}: `{keyword}` is given twice", self.layer),
            )),
            (one, other) => Ok(one.or(other)),
        }
    }

    fn size(
        &mut self,
        index: usize,
        keyword: &str,
        default: Option<usize>,
    ) -> Result<usize, SpecError> {
        match self.take(index, keyword)? {
            Some(argument) => match argument.value {
                Value::Number(value) if value >= 1.0 && value.fract() == 0.0 && value < 1e9 => {
                    Ok(value as usize)
                }
                _ => Err(error(
                    argument.position,
                    &argument.text,
                    &format!(
                        "{}: `{keyword}` must be a positive whole number",
                        self.layer
                    ),
                )),
            },
            None => default.ok_or_else(|| {
                error(
                    self.position,
                    self.layer,
                    &format!("{} needs `{keyword}`", self.layer),
                )
            }),
        }
    }

    /// A size or a `(rows, columns)` pair; `zero` allows 0 (paddings).
    fn pair(
        &mut self,
        index: usize,
        keyword: &str,
        default: Option<(usize, usize)>,
        zero: bool,
    ) -> Result<(usize, usize), SpecError> {
        let smallest = if zero { 0.0 } else { 1.0 };
        let whole = |v: f64| v >= smallest && v.fract() == 0.0 && v < 1e9;
        match self.take(index, keyword)? {
            Some(argument) => match argument.value {
                Value::Number(v) if whole(v) => Ok((v as usize, v as usize)),
                Value::Pair(a, b) if whole(a) && whole(b) => Ok((a as usize, b as usize)),
                Value::None if default.is_some() => Ok(default.unwrap_or((1, 1))),
                _ => Err(error(
                    argument.position,
                    &argument.text,
                    &format!(
                        "{}: `{keyword}` must be a whole number{} or a pair of them",
                        self.layer,
                        if zero { " (0 or more)" } else { " (1 or more)" }
                    ),
                )),
            },
            None => default.ok_or_else(|| {
                error(
                    self.position,
                    self.layer,
                    &format!("{} needs `{keyword}`", self.layer),
                )
            }),
        }
    }

    fn number(
        &mut self,
        index: usize,
        keyword: &str,
        default: f64,
        valid: impl Fn(f64) -> bool,
        rule: &str,
    ) -> Result<f64, SpecError> {
        match self.take(index, keyword)? {
            Some(argument) => match argument.value {
                Value::Number(value) if valid(value) => Ok(value),
                _ => Err(error(
                    argument.position,
                    &argument.text,
                    &format!("{}: `{keyword}` must be {rule}", self.layer),
                )),
            },
            None => Ok(default),
        }
    }

    fn flag(&mut self, index: usize, keyword: &str, default: bool) -> Result<bool, SpecError> {
        match self.take(index, keyword)? {
            Some(Argument {
                value: Value::Bool(value),
                ..
            }) => Ok(value),
            Some(argument) => Err(error(
                argument.position,
                &argument.text,
                &format!("{}: `{keyword}` must be True or False", self.layer),
            )),
            None => Ok(default),
        }
    }

    /// Refuses whatever the layer did not read.
    fn finish(mut self) -> Result<(), SpecError> {
        // `inplace` changes nothing here; accepted so that PyTorch code copies over.
        let _ = self.take(usize::MAX, "inplace")?;
        if let Some(extra) = self
            .positional
            .iter()
            .find(|argument| argument.value != Value::None || !argument.text.is_empty())
        {
            return Err(error(
                extra.position,
                &extra.text,
                &format!("{}: too many arguments", self.layer),
            ));
        }
        if let Some(unknown) = self.keywords.first() {
            return Err(error(
                unknown.position,
                &unknown.text,
                &format!(
                    "{}: unknown argument `{}`",
                    self.layer,
                    unknown.keyword.as_deref().unwrap_or("")
                ),
            ));
        }
        Ok(())
    }
}

fn placeholder() -> Argument {
    Argument {
        keyword: None,
        value: Value::None,
        position: 0,
        text: String::new(),
    }
}

/// The names `--layers` knows, for the error about an unknown one.
const NAMES: &str = "Linear, Conv2d, MaxPool2d, AvgPool2d, Flatten, Dropout, BatchNorm1d, \
BatchNorm2d, LayerNorm, ReLU, Sigmoid, Tanh, Identity, LeakyReLU, GELU, SiLU, ELU";

/// One layer from its text (`Name` or `Name(arguments)`) at `position`.
/// Refuses what PyTorch's signatures have and this language leaves to the data: an
/// input width (`in_features=`, `in_channels=`, `num_features=`, `normalized_shape=`), and
/// a second number for `Linear` or a third for `Conv2d` given by position, which in
/// PyTorch's order would be the input width (`Conv2d(1, 8, 3)` would otherwise read
/// silently as 1 output channel, an 8x8 kernel and stride 3).
fn refuse_input_widths(name: &str, arguments: &Arguments<'_>) -> Result<(), SpecError> {
    let copied = |argument: &Argument, example: &str| {
        error(
            argument.position,
            &argument.text,
            &format!(
                "{name}: input widths come from the data, so PyTorch's {example}; give \
                 the other arguments by keyword"
            ),
        )
    };
    if let Some(argument) = arguments.keywords.iter().find(|argument| {
        matches!(
            argument.keyword.as_deref(),
            Some("in_features" | "in_channels" | "num_features" | "normalized_shape")
        )
    }) {
        return Err(copied(
            argument,
            "`in_features`/`in_channels` are not written here",
        ));
    }
    let numbers = |index: usize| {
        arguments
            .positional
            .get(index)
            .filter(|argument| matches!(argument.value, Value::Number(_)))
    };
    match name {
        "Linear" => match numbers(1) {
            Some(argument) => Err(copied(argument, "Linear(784, 10) is Linear(10) here")),
            None => Ok(()),
        },
        "Conv2d" => match arguments.positional.get(2) {
            Some(argument) => Err(copied(
                argument,
                "Conv2d(1, 32, 3) is Conv2d(32, 3) here, with stride= and padding=",
            )),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn parse_layer(position: usize, text: &str) -> Result<LayerSpec, SpecError> {
    let (name, arguments_text, arguments_at) = match text.find('(') {
        Some(open) => {
            if !text.ends_with(')') {
                let close = open + text[open..].find(')').unwrap_or(text.len() - open);
                let rest = &text[(close + 1).min(text.len())..];
                let skipped = rest.len() - rest.trim_start().len();
                return Err(error(
                    position + close + 1 + skipped,
                    rest.trim(),
                    "unexpected text after `)`",
                ));
            }
            (
                text[..open].trim_end(),
                &text[open + 1..text.len() - 1],
                position + open + 1,
            )
        }
        None => (text, "", position + text.len()),
    };
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        return Err(error(
            position,
            name,
            "a layer name (letters and digits) was expected",
        ));
    }
    let mut arguments = parse_arguments(name, position, arguments_at, arguments_text)?;
    refuse_input_widths(name, &arguments)?;
    let layer = match name {
        "Linear" => LayerSpec::Linear {
            out_features: arguments.size(0, "out_features", None)?,
            bias: arguments.flag(1, "bias", true)?,
        },
        "Conv2d" => {
            let out_channels = arguments.size(0, "out_channels", None)?;
            let kernel = arguments.pair(1, "kernel_size", None, false)?;
            LayerSpec::Conv2d {
                out_channels,
                kernel,
                stride: arguments.pair(2, "stride", Some((1, 1)), false)?,
                padding: arguments.pair(3, "padding", Some((0, 0)), true)?,
                bias: arguments.flag(4, "bias", true)?,
            }
        }
        "MaxPool2d" | "AvgPool2d" => {
            let kernel = arguments.pair(0, "kernel_size", None, false)?;
            let pool = Pool {
                kernel,
                stride: arguments.pair(1, "stride", Some(kernel), false)?,
                padding: arguments.pair(2, "padding", Some((0, 0)), true)?,
            };
            if name == "MaxPool2d" {
                LayerSpec::MaxPool2d(pool)
            } else {
                LayerSpec::AvgPool2d(pool)
            }
        }
        "Flatten" => LayerSpec::Flatten,
        "Dropout" => LayerSpec::Dropout {
            p: arguments.number(0, "p", 0.5, |p| (0.0..=1.0).contains(&p), "between 0 and 1")?,
        },
        "BatchNorm1d" | "BatchNorm2d" => {
            // The width, if written, is checked against the input by `infer_shapes`.
            let _ = arguments.size(0, "num_features", Some(1))?;
            let eps = arguments.number(1, "eps", 1e-5, |e| e > 0.0, "positive")?;
            let momentum = arguments.number(
                2,
                "momentum",
                0.1,
                |m| (0.0..=1.0).contains(&m),
                "between 0 and 1",
            )?;
            if name == "BatchNorm1d" {
                LayerSpec::BatchNorm1d { eps, momentum }
            } else {
                LayerSpec::BatchNorm2d { eps, momentum }
            }
        }
        "LayerNorm" => {
            let _ = arguments.size(0, "normalized_shape", Some(1))?;
            LayerSpec::LayerNorm {
                eps: arguments.number(1, "eps", 1e-5, |e| e > 0.0, "positive")?,
            }
        }
        "ReLU" => LayerSpec::Activation(ActivationSpec::Output(ActivationKind::Relu)),
        "Sigmoid" => LayerSpec::Activation(ActivationSpec::Output(ActivationKind::Sigmoid)),
        "Tanh" => LayerSpec::Activation(ActivationSpec::Output(ActivationKind::Tanh)),
        "Identity" => LayerSpec::Activation(ActivationSpec::Output(ActivationKind::Identity)),
        "SiLU" => LayerSpec::Activation(ActivationSpec::Input(InputActivationKind::Silu)),
        "LeakyReLU" => {
            LayerSpec::Activation(ActivationSpec::Input(InputActivationKind::LeakyRelu {
                negative_slope: arguments.number(
                    0,
                    "negative_slope",
                    0.01,
                    f64::is_finite,
                    "a finite number",
                )?,
            }))
        }
        "ELU" => LayerSpec::Activation(ActivationSpec::Input(InputActivationKind::Elu {
            alpha: arguments.number(0, "alpha", 1.0, f64::is_finite, "a finite number")?,
        })),
        "GELU" => {
            let tanh = match arguments.take(0, "approximate")? {
                None => false,
                Some(Argument {
                    value: Value::Text(text),
                    ..
                }) if text == "none" => false,
                Some(Argument {
                    value: Value::Text(text),
                    ..
                }) if text == "tanh" => true,
                Some(argument) => {
                    return Err(error(
                        argument.position,
                        &argument.text,
                        "GELU: `approximate` must be 'none' or 'tanh'",
                    ))
                }
            };
            LayerSpec::Activation(ActivationSpec::Input(InputActivationKind::Gelu { tanh }))
        }
        other => {
            return Err(error(
                position,
                other,
                &format!("unknown layer `{other}` (known: {NAMES})"),
            ))
        }
    };
    arguments.finish()?;
    Ok(layer)
}

/// The arguments inside a layer's parentheses (`text` starts at byte `at` of the spec).
fn parse_arguments<'a>(
    layer: &'a str,
    position: usize,
    at: usize,
    text: &str,
) -> Result<Arguments<'a>, SpecError> {
    let mut arguments = Arguments {
        layer,
        position,
        positional: Vec::new(),
        keywords: Vec::new(),
    };
    if text.trim().is_empty() {
        return Ok(arguments);
    }
    let mut items = split_top_level(text).map_err(|mut error| {
        error.position += at;
        error
    })?;
    // A trailing comma, as Python allows in `Conv2d(64, 3,)`.
    if items.len() > 1 && items[items.len() - 1].1.trim().is_empty() {
        items.pop();
    }
    for (start, item) in items {
        let trimmed = item.trim();
        let item_at = at + start + (item.len() - item.trim_start().len());
        if trimmed.is_empty() {
            // The comma after the empty item (the first) or before it.
            let comma = if start == 0 {
                at + text_end(text, 0)
            } else {
                at + start - 1
            };
            return Err(error(comma, ",", "an empty argument"));
        }
        let (keyword, value_text) = match trimmed.split_once('=') {
            Some((keyword, value)) => (Some(keyword.trim().to_string()), value.trim()),
            None => (None, trimmed),
        };
        if keyword.is_none() && !arguments.keywords.is_empty() {
            return Err(error(
                item_at,
                trimmed,
                "a positional argument after a keyword one",
            ));
        }
        let value = parse_value(value_text).ok_or_else(|| {
            error(
                item_at,
                trimmed,
                &format!("{layer}: cannot read the value `{value_text}`"),
            )
        })?;
        let argument = Argument {
            keyword: keyword.clone(),
            value,
            position: item_at,
            text: trimmed.to_string(),
        };
        if keyword.is_some() {
            arguments.keywords.push(argument);
        } else {
            arguments.positional.push(argument);
        }
    }
    Ok(arguments)
}

/// A number, a pair `(a, b)`, a quoted text, `True`/`False` or `None`.
fn parse_value(text: &str) -> Option<Value> {
    match text {
        "True" => return Some(Value::Bool(true)),
        "False" => return Some(Value::Bool(false)),
        "None" => return Some(Value::None),
        _ => {}
    }
    if let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        let mut parts = inner.split(',').map(str::trim).filter(|p| !p.is_empty());
        let a = parts.next()?.parse().ok()?;
        let b = parts.next()?.parse().ok()?;
        return parts.next().is_none().then_some(Value::Pair(a, b));
    }
    for quote in ['\'', '"'] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return Some(Value::Text(inner.to_string()));
        }
    }
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST: Shape = Shape::Image {
        channels: 1,
        height: 28,
        width: 28,
    };

    fn layers(spec: &str) -> Vec<LayerSpec> {
        parse(spec).unwrap().into_iter().map(|l| l.layer).collect()
    }

    #[test]
    fn the_canonical_form_reads_back_as_the_same_layers() {
        let specs = [
            "Conv2d(32, 3, padding=1), ReLU, MaxPool2d(2), Flatten, Linear(128), Dropout(0.25), Linear(10)",
            "Conv2d(3, (3, 2), stride=(2, 1), bias=False), BatchNorm2d(eps=1e-3, momentum=0.2), AvgPool2d(2, stride=1, padding=1)",
            "Linear( 12 ), BatchNorm1d, GELU(approximate='tanh'), LeakyReLU(0.2), ELU(alpha=0.5), SiLU, LayerNorm(eps=1e-6), Sigmoid, Tanh, Identity, GELU",
        ];
        for text in specs {
            let layers = parse(text).unwrap();
            let written = canonical(&layers);
            let again = parse(&written).unwrap();
            let kinds =
                |layers: &[Located]| layers.iter().map(|l| l.layer.clone()).collect::<Vec<_>>();
            assert_eq!(kinds(&again), kinds(&layers), "{text} -> {written}");
            assert_eq!(canonical(&again), written, "{written} is not a fixed point");
        }
    }

    #[test]
    fn the_issues_cnn_parses_with_pytorchs_defaults_and_shapes() {
        let spec = "Conv2d(32, 3, padding=1), ReLU, MaxPool2d(2), Conv2d(64, 3, padding=1), \
                    ReLU, MaxPool2d(2), Flatten, Linear(128), ReLU, Dropout(0.25), Linear(10)";
        let parsed = parse(spec).unwrap();
        assert_eq!(
            parsed[0].layer,
            LayerSpec::Conv2d {
                out_channels: 32,
                kernel: (3, 3),
                stride: (1, 1),
                padding: (1, 1),
                bias: true
            }
        );
        assert_eq!(
            parsed[2].layer,
            LayerSpec::MaxPool2d(Pool {
                kernel: (2, 2),
                stride: (2, 2),
                padding: (0, 0)
            })
        );
        assert_eq!(parsed[9].layer, LayerSpec::Dropout { p: 0.25 });
        let shapes = infer_shapes(&parsed, MNIST).unwrap();
        let image = |channels, side| Shape::Image {
            channels,
            height: side,
            width: side,
        };
        assert_eq!(shapes[0], image(32, 28));
        assert_eq!(shapes[2], image(32, 14));
        assert_eq!(shapes[5], image(64, 7));
        assert_eq!(shapes[6], Shape::Flat(64 * 7 * 7));
        assert_eq!(shapes[10], Shape::Flat(10));
    }

    #[test]
    fn keywords_defaults_and_every_activation() {
        assert_eq!(
            layers("LeakyReLU, LeakyReLU(0.2), GELU, GELU(approximate='tanh'), SiLU, ELU(alpha=0.5), ReLU(inplace=True)"),
            vec![
                LayerSpec::Activation(ActivationSpec::Input(InputActivationKind::LeakyRelu { negative_slope: 0.01 })),
                LayerSpec::Activation(ActivationSpec::Input(InputActivationKind::LeakyRelu { negative_slope: 0.2 })),
                LayerSpec::Activation(ActivationSpec::Input(InputActivationKind::Gelu { tanh: false })),
                LayerSpec::Activation(ActivationSpec::Input(InputActivationKind::Gelu { tanh: true })),
                LayerSpec::Activation(ActivationSpec::Input(InputActivationKind::Silu)),
                LayerSpec::Activation(ActivationSpec::Input(InputActivationKind::Elu { alpha: 0.5 })),
                LayerSpec::Activation(ActivationSpec::Output(ActivationKind::Relu)),
            ]
        );
        assert_eq!(
            layers("Conv2d(8, kernel_size=(3, 5), stride=2, bias=False), BatchNorm2d(8, eps=1e-3), Linear(out_features=4, bias=False)"),
            vec![
                LayerSpec::Conv2d {
                    out_channels: 8,
                    kernel: (3, 5),
                    stride: (2, 2),
                    padding: (0, 0),
                    bias: false
                },
                LayerSpec::BatchNorm2d { eps: 1e-3, momentum: 0.1 },
                LayerSpec::Linear { out_features: 4, bias: false },
            ]
        );
        assert_eq!(layers("Linear(4, ), ReLU,"), layers("Linear(4), ReLU"));
        assert_eq!(
            layers("AvgPool2d(3, stride=1, padding=1), BatchNorm1d, LayerNorm(eps=1e-6)"),
            vec![
                LayerSpec::AvgPool2d(Pool {
                    kernel: (3, 3),
                    stride: (1, 1),
                    padding: (1, 1)
                }),
                LayerSpec::BatchNorm1d {
                    eps: 1e-5,
                    momentum: 0.1
                },
                LayerSpec::LayerNorm { eps: 1e-6 },
            ]
        );
    }

    #[test]
    fn every_error_names_its_token() {
        #[rustfmt::skip]
        let cases = [
            ("Linear(128), Conv3d(4, 3)", "Conv3d", "unknown layer `Conv3d`"),
            ("Linear(128), ReLU,, Linear(10)", ",", "an empty layer"),
            ("Linear(128, , True)", ",", "an empty argument"),
            ("Linear(0)", "0", "`out_features` must be a positive whole number"),
            ("Linear(12.5)", "12.5", "positive whole number"),
            ("Linear", "Linear", "Linear needs `out_features`"),
            ("Linear(10, bais=False)", "bais=False", "unknown argument `bais`"),
            ("Linear(10, 20)", "20", "PyTorch's Linear(784, 10) is Linear(10) here"),
            ("Conv2d(1, 8, 3)", "3", "PyTorch's Conv2d(1, 32, 3) is Conv2d(32, 3) here"),
            ("Conv2d(8, 3, in_channels=1)", "in_channels=1", "input widths come from the data"),
            ("Linear(10, True, 3)", "3", "too many arguments"),
            ("Linear(10, out_features=3)", "out_features=3", "given twice"),
            ("Dropout(1.5)", "1.5", "between 0 and 1"),
            ("GELU(approximate='fast')", "approximate='fast'", "'none' or 'tanh'"),
            ("Conv2d(8, 3, padding=-1)", "padding=-1", "0 or more"),
            ("Linear(10", "(", "without its `)`"),
            ("ReLU)", ")", "without its `(`"),
            ("Linear(10) x", "x", "after `)`"),
            ("Linear(bias=False, 10)", "10", "positional argument after a keyword"),
            ("Conv2d(8, 3, stride=[1])", "stride=[1]", "cannot read the value"),
            ("", "", "no layers"),
        ];
        for (spec, token, message) in cases {
            let error = parse(spec).unwrap_err();
            assert_eq!(error.token, token, "{spec}: {error}");
            assert!(error.message.contains(message), "{spec}: {error}");
            assert_eq!(
                &spec[error.position..error.position + token.len()],
                token,
                "{spec}"
            );
        }
    }

    #[test]
    fn shapes_that_do_not_fit_name_the_layer() {
        #[rustfmt::skip]
        let cases = [
            ("Linear(128), Linear(10)", MNIST, "Linear(128)", "add Flatten"),
            ("Flatten, Conv2d(8, 3)", MNIST, "Conv2d(8, 3)", "needs an image but receives 784 features"),
            ("Conv2d(8, 29)", MNIST, "Conv2d(8, 29)", "larger than its padded"),
            ("MaxPool2d(2, padding=2)", MNIST, "MaxPool2d(2, padding=2)", "at most half"),
            ("BatchNorm1d", MNIST, "BatchNorm1d", "add Flatten"),
            ("Linear(16), BatchNorm1d(32)", Shape::Flat(4), "BatchNorm1d(32)", "declares 32 features but receives 16"),
            ("Conv2d(4, 3), BatchNorm2d(8)", MNIST, "BatchNorm2d(8)", "receives 4"),
        ];
        for (spec, input, token, message) in cases {
            let error = infer_shapes(&parse(spec).unwrap(), input).unwrap_err();
            assert_eq!(error.token, token, "{spec}: {error}");
            assert!(error.message.contains(message), "{spec}: {error}");
            assert_eq!(&spec[error.position..error.position + token.len()], token);
        }
        // Widths that do match pass; Flatten of features changes nothing.
        let parsed =
            parse("Flatten, Linear(16), BatchNorm1d(16), LayerNorm(16), GELU, Linear(3)").unwrap();
        assert_eq!(
            infer_shapes(&parsed, Shape::Flat(4)).unwrap().last(),
            Some(&Shape::Flat(3))
        );
    }
}
