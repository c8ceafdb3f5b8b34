//! The per-core training step: each core owns a slice of every wide layer's units for
//! the whole step, and the cores meet only where a layer needs the whole of the layer
//! before it.
//!
//! For a network `Linear, activation, Linear, ..., Linear` (weights `W_i: (out_i,
//! in_i)`, layer `i`'s activated output `H_i: (batch, out_i)`, `X = H_-1` the input,
//! `G_i = dL/d(pre-activation of layer i): (batch, out_i)`), one step on `T` cores is:
//!
//! - **forward**, one join per hidden layer `i`: the core owning units `s` of layer `i`
//!   computes `H_i[:, s] = f(H_{i-1} W_i[s, :]^T + b_i[s])`. The last (narrow) layer, the
//!   loss and its gradient `G_last` run on the calling thread.
//! - **backward**, one join per hidden layer, from the top: the core owning units `s` of
//!   layer `i - 1` computes `G_{i-1}[:, s] = (G_i W_i[:, s]) * f'(H_{i-1}[:, s])`, then
//!   the gradients of its columns `dW_i[:, s] = G_i^T H_{i-1}[:, s]` and of its biases
//!   `b_{i-1}[s]`; in the last join (`i = 1`) also those of its rows of the first layer,
//!   `dW_0[s, :] = G_0[:, s]^T X`. The last layer's bias gradient is summed on the calling
//!   thread. The optimizer then steps on the gradients, as after a plain `backward`.
//! - with a stateless gradient-descent update ([`PlainUpdate`]), the update is fused into
//!   those GEMMs instead: `W_i[:, s] = shrink W_i[:, s] - lr G_i^T H_{i-1}[:, s]` (and
//!   the same for `W_0[s, :]` and the biases), and no gradient is stored.
//!
//! So a 784-256-10 network meets twice per step, the first layer's 256 x 784 weights stay
//! split between the cores' caches (rows 0-127 on one core, 128-255 on the other), and
//! every GEMM is a one-thread OpenBLAS call. Each element of every
//! product is the same dot product, in the same order, as in the plain step's GEMM (a
//! slice of `C` selects elements; it does not reorder their sums), and the biases and
//! activations use the same formulas, so the step equals the plain step with one-thread
//! OpenBLAS bit for bit (the tests check it).
//!
//! A layer narrower than two blocks of [`BLOCK`] units per core is not split (its work
//! runs on the calling thread). Nothing is allocated after the first (largest) batch.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};

use crate::buffer::Buffer;
use crate::crew::{Crew, Mode, PaceReport, Pacer};
use crate::float::Float;
use crate::gemm::gemm;
use crate::layers::{column_sums, fill_rows_with, ActivationKind, Layer, LinearViews};
use crate::module::ParameterKind;
use crate::optim::PlainUpdate;
use crate::threads::{self, SerialKernels};

use super::MultiLayerPerceptron;

/// Units per block: a split between cores falls on a multiple of this (OpenBLAS's
/// micro-kernels are 16 floats wide).
pub(crate) const BLOCK: usize = 16;

/// Input rows per core when filling a batch (8-bit pixels converted on the way): below
/// this, one core fills the batch alone.
const ROWS_PER_FILL: usize = 8;

/// A linear layer of the plan: its position in the network's layers and the activation
/// that follows it (`None` for the last).
#[derive(Clone, Copy, Debug)]
struct Stage {
    layer: usize,
    activation: Option<ActivationKind>,
}

/// The buffers, plan and crew of the per-core step for one network (see the module
/// docs).
#[derive(Debug)]
pub(crate) struct SlicedStep<F> {
    stages: Vec<Stage>,
    /// One member per core; the calling thread leads. Its size fixes how every layer is
    /// cut, whoever runs the pieces.
    crew: Crew,
    /// Whether the crew spreads the pieces or the calling thread runs them alone.
    pacer: Pacer,
    input: Buffer<F>,
    /// `H_i: (batch, out_i)` per stage (the last holds the logits).
    outputs: Vec<Buffer<F>>,
    /// `G_i: (batch, out_i)` per hidden stage (the last stage's comes from the loss).
    grads: Vec<Buffer<F>>,
}

impl<F: Float> SlicedStep<F> {
    /// Whether the step handles `model` on `cores` cores: linear layers, each but the
    /// last followed by at most one activation, at least one hidden layer wide enough to
    /// split, and `cores > 1`.
    pub(crate) fn applies(model: &MultiLayerPerceptron<F>, cores: usize) -> bool {
        Self::plan(model, cores).is_some()
    }

    /// The stages of `model`, if the step applies (see [`SlicedStep::applies`]).
    fn plan(model: &MultiLayerPerceptron<F>, cores: usize) -> Option<Vec<Stage>> {
        let stages = stages(model.layers())?;
        let splits = stages[..stages.len() - 1].iter().any(|stage| {
            let width = model.layers()[stage.layer]
                .as_linear()
                .map_or(0, |linear| linear.out_features());
            parts_for(width, cores) > 1
        });
        (cores > 1 && splits).then_some(stages)
    }

    /// The step for `model` on `cores` cores (starting `cores - 1` helper threads), if
    /// it applies.
    pub(crate) fn new(model: &MultiLayerPerceptron<F>, cores: usize) -> Option<Self> {
        let stages = Self::plan(model, cores)?;
        let crew = Crew::new(cores.min(MAX_PARTS));
        // Next to other work that holds the cores (another run of this process, or at
        // least as many other runnable tasks on the machine as the CPUs this process
        // may use: the count includes this crew, and on an idle machine a task or so of
        // the system's), start alone: the pacer spreads once a core is free.
        let crowded_machine = crate::crew::runnable_tasks()
            .is_some_and(|tasks| tasks.saturating_sub(crew.size()) >= threads::available_cores());
        let start = if crew.started_crowded() || crowded_machine {
            Mode::Solo
        } else {
            Mode::Spread
        };
        Some(Self {
            crew,
            pacer: Pacer::new(start),
            input: Buffer::new(),
            outputs: stages.iter().map(|_| Buffer::new()).collect(),
            grads: stages.iter().map(|_| Buffer::new()).collect(),
            stages,
        })
    }

    /// The logits `(batch, out)` of the `(batch, in)` input that `fill_rows(rows, view)`
    /// writes in place, rows `rows` of the batch into `view: (rows.len(), in)` (the
    /// cores fill their share of the rows at once), keeping every layer's output for
    /// [`SlicedStep::backward`].
    pub(crate) fn forward_with(
        &mut self,
        model: &mut MultiLayerPerceptron<F>,
        batch: usize,
        fill_rows: impl Fn(Range<usize>, ArrayViewMut2<'_, F>) + Sync,
    ) -> ArrayView2<'_, F> {
        let _serial = SerialKernels::new();
        self.pacer.batch_started();
        let input = InputRows {
            rows: self.input.resize(batch, model.in_features()),
            start: 0,
        };
        let parts = (batch / ROWS_PER_FILL).max(1);
        let crew = Members {
            crew: &self.crew,
            pacer: &mut self.pacer,
        };
        crew.in_parts(input, parts, batch, 1, &|part: InputRows<'_, F>| {
            let rows = part.start..part.start + part.rows.nrows();
            fill_rows(rows, part.rows)
        });
        let last = self.stages.len() - 1;
        for (index, stage) in self.stages.iter().enumerate() {
            let (before, rest) = self.outputs.split_at_mut(index);
            let input = match before.last() {
                Some(previous) => previous.view(),
                None => self.input.view(),
            };
            let linear = linear_at(model, stage.layer);
            let width = linear.out_features();
            let LinearViews { weights, bias, .. } = linear.views_mut();
            let parts = if index == last {
                1
            } else {
                parts_for(width, self.crew.size())
            };
            let slice = ForwardSlice {
                weights,
                bias,
                output: rest[0].resize(batch, width),
            };
            let crew = Members {
                crew: &self.crew,
                pacer: &mut self.pacer,
            };
            crew.in_parts(slice, parts, width, BLOCK, &|slice: ForwardSlice<'_, F>| {
                slice.run(input, stage.activation)
            });
        }
        self.outputs[last].view()
    }

    /// Back-propagates `grad_output = dL/d(logits): (batch, out)` from the last
    /// [`SlicedStep::forward_with`]: applies `update` to every weight and bias when
    /// given, else leaves every linear layer's `d_weights` and `d_bias` for an optimizer.
    pub(crate) fn backward(
        &mut self,
        model: &mut MultiLayerPerceptron<F>,
        grad_output: ArrayView2<'_, F>,
        update: Option<PlainUpdate<F>>,
    ) {
        let _serial = SerialKernels::new();
        let last = self.stages.len() - 1;
        let batch = self.input.shape().0;
        assert_eq!(
            grad_output.dim(),
            self.outputs[last].shape(),
            "SlicedStep::backward: grad_output shape differs from the last forward's output"
        );
        {
            let LinearViews { bias, d_bias, .. } =
                linear_at(model, self.stages[last].layer).views_mut();
            bias_step(update, grad_output, bias, d_bias);
        }
        for index in (1..=last).rev() {
            let (stage, below) = (self.stages[index], self.stages[index - 1]);
            let (grads_below, grads_rest) = self.grads.split_at_mut(index);
            let grad = if index == last {
                grad_output
            } else {
                grads_rest[0].view()
            };
            let (layers_below, layers_rest) = model.layers.split_at_mut(stage.layer);
            let upper = linear_of(&mut layers_rest[0]).views_mut();
            let lower = linear_of(&mut layers_below[below.layer]);
            let width = lower.out_features();
            let LinearViews {
                weights: lower_weights,
                bias,
                d_weights: lower_d_weights,
                d_bias,
            } = lower.views_mut();
            let first_layer = (index == 1).then_some(Weights {
                values: lower_weights,
                grads: lower_d_weights,
            });
            let slice = BackwardSlice {
                upper: Weights {
                    values: upper.weights,
                    grads: upper.d_weights,
                },
                hidden: self.outputs[index - 1].view(),
                grad_below: grads_below[index - 1].resize(batch, width),
                bias,
                d_bias,
                first_layer,
            };
            let shared = BackwardShared {
                grad,
                input: self.input.view(),
                activation: below.activation,
                update,
            };
            let parts = parts_for(width, self.crew.size());
            let crew = Members {
                crew: &self.crew,
                pacer: &mut self.pacer,
            };
            crew.in_parts(slice, parts, width, BLOCK, &|slice: BackwardSlice<
                '_,
                F,
            >| {
                slice.run(shared)
            });
        }
        self.pacer.batch_finished(batch);
    }

    /// How the pacer has run the crew so far.
    pub(crate) fn pace_report(&self) -> PaceReport {
        self.pacer.report()
    }

    /// Runs `work` (an optimizer's step on the gradients [`SlicedStep::backward`] left)
    /// with the crew sharing its elementwise work, as the pacer has the crew run now.
    pub(crate) fn sharing<R>(&self, work: impl FnOnce() -> R) -> R {
        let executor = CrewExecutor {
            crew: &self.crew,
            mode: self.pacer.mode(),
        };
        threads::with_executor(&executor, work)
    }
}

/// The crew as the executor of an optimizer's elementwise work.
struct CrewExecutor<'a> {
    crew: &'a Crew,
    mode: Mode,
}

impl threads::Executor for CrewExecutor<'_> {
    fn width(&self) -> usize {
        match self.mode {
            Mode::Spread => self.crew.size(),
            Mode::Solo => 1,
        }
    }

    fn run(&self, pieces: usize, job: &(dyn Fn(usize) + Sync)) {
        self.crew.run(self.mode, pieces, job);
    }
}

/// The plan for `layers`, if they alternate as the step needs (see [`SlicedStep::new`]).
fn stages<F: Float>(layers: &[Layer<F>]) -> Option<Vec<Stage>> {
    let mut stages: Vec<Stage> = Vec::new();
    for (position, layer) in layers.iter().enumerate() {
        if !layer.is_assignment_layer() {
            return None;
        }
        match layer.activation_kind() {
            None => stages.push(Stage {
                layer: position,
                activation: None,
            }),
            Some(kind) => match stages.last_mut() {
                Some(last) if last.activation.is_none() => last.activation = Some(kind),
                _ => return None,
            },
        }
    }
    let last = stages.last()?;
    (stages.len() >= 2 && last.activation.is_none()).then_some(stages)
}

/// How many cores share a layer of `width` units: at most `cores`, with at least two
/// blocks of [`BLOCK`] units each.
fn parts_for(width: usize, cores: usize) -> usize {
    (width / (2 * BLOCK)).min(cores).max(1)
}

/// The linear layer at `position` (the plan only names linear layers).
fn linear_at<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    position: usize,
) -> &mut crate::layers::Linear<F> {
    linear_of(&mut model.layers[position])
}

fn linear_of<F: Float>(layer: &mut Layer<F>) -> &mut crate::layers::Linear<F> {
    // Cannot fail: `stages` records linear layers only.
    layer.as_linear_mut().expect("the plan names linear layers")
}

/// `d_bias = column sums of grad: (batch, out)`, then, with an update, `bias = bias - lr
/// d_bias`.
fn bias_step<F: Float>(
    update: Option<PlainUpdate<F>>,
    grad: ArrayView2<'_, F>,
    mut bias: ArrayViewMut1<'_, F>,
    mut d_bias: ArrayViewMut1<'_, F>,
) {
    column_sums(grad, d_bias.view_mut());
    let Some(update) = update else { return };
    update.apply(
        ParameterKind::Bias,
        // Cannot fail: slices of the layer's standard-layout bias and scratch.
        bias.as_slice_mut().expect("contiguous bias"),
        // Cannot fail: as above.
        d_bias.as_slice().expect("contiguous bias gradient"),
    );
}

/// Work on a range of a layer's units that can be cut in two at a unit.
trait Units: Sized + Send {
    /// The units `..at` and `at..`.
    fn split_at(self, at: usize) -> (Self, Self);
}

/// The most parts a layer is cut into (the crew's size is capped to it).
pub(crate) const MAX_PARTS: usize = crate::crew::MAX_PIECES;

/// The crew and its pacer, borrowed for one job.
struct Members<'a> {
    crew: &'a Crew,
    pacer: &'a mut Pacer,
}

impl Members<'_> {
    /// Runs `work` on `parts` pieces of `slice` (of `width` units), cut at multiples of
    /// `align`, at most one piece per crew member: spread over the crew or all on the
    /// calling thread, as the pacer says. Nothing is allocated: the pieces wait on the
    /// stack.
    fn in_parts<S: Units>(
        self,
        slice: S,
        parts: usize,
        width: usize,
        align: usize,
        work: &(impl Fn(S) + Sync),
    ) {
        let parts = parts.min(self.crew.size());
        if parts <= 1 {
            work(slice);
            return;
        }
        let pieces: [Mutex<Option<S>>; MAX_PARTS] = std::array::from_fn(|_| Mutex::new(None));
        cut(slice, width, align, &pieces[..parts]);
        let stats = self.crew.run(self.pacer.mode(), parts, &|piece| {
            let piece = pieces
                .get(piece)
                .and_then(|piece| piece.lock().unwrap_or_else(PoisonError::into_inner).take());
            if let Some(piece) = piece {
                work(piece);
            }
        });
        self.pacer.met(stats);
    }
}

/// Cuts `slice` (of `width` units) into `pieces.len()` pieces at multiples of `align`,
/// halving recursively, and puts them in `pieces`.
fn cut<S: Units>(slice: S, width: usize, align: usize, pieces: &[Mutex<Option<S>>]) {
    let parts = pieces.len();
    if parts <= 1 {
        if let Some(piece) = pieces.first() {
            *piece.lock().unwrap_or_else(PoisonError::into_inner) = Some(slice);
        }
        return;
    }
    let left_parts = parts / 2;
    let at = ((width * left_parts / parts).div_ceil(align) * align).min(width);
    let (left, right) = slice.split_at(at);
    let (left_pieces, right_pieces) = pieces.split_at(left_parts);
    cut(left, at, align, left_pieces);
    cut(right, width - at, align, right_pieces);
}

/// Rows of the batch's input, filled in parallel.
struct InputRows<'a, F> {
    /// The rows `start..start + rows.nrows()` of the input.
    rows: ArrayViewMut2<'a, F>,
    start: usize,
}

impl<F: Float> Units for InputRows<'_, F> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let (left, right) = self.rows.split_at(Axis(0), at);
        (
            Self {
                rows: left,
                start: self.start,
            },
            Self {
                rows: right,
                start: self.start + at,
            },
        )
    }
}

/// One core's units of a layer in the forward pass.
struct ForwardSlice<'a, F> {
    /// `W[s, :]: (units, in)`.
    weights: ArrayViewMut2<'a, F>,
    /// `b[s]` (read).
    bias: ArrayViewMut1<'a, F>,
    /// `H[:, s]: (batch, units)`.
    output: ArrayViewMut2<'a, F>,
}

impl<F: Float> Units for ForwardSlice<'_, F> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let (weights_left, weights_right) = self.weights.split_at(Axis(0), at);
        let (bias_left, bias_right) = self.bias.split_at(Axis(0), at);
        let (output_left, output_right) = self.output.split_at(Axis(1), at);
        (
            Self {
                weights: weights_left,
                bias: bias_left,
                output: output_left,
            },
            Self {
                weights: weights_right,
                bias: bias_right,
                output: output_right,
            },
        )
    }
}

impl<F: Float> ForwardSlice<'_, F> {
    /// `H[:, s] = f(input W[s, :]^T + b[s])`; `input: (batch, in)`.
    fn run(mut self, input: ArrayView2<'_, F>, activation: Option<ActivationKind>) {
        fill_rows_with(self.output.view_mut(), self.bias.view());
        gemm(
            F::one(),
            input,
            self.weights.t(),
            F::one(),
            self.output.view_mut(),
        );
        if let Some(kind) = activation {
            kind.apply_in_place(self.output);
        }
    }
}

/// What every core reads in a backward join.
#[derive(Clone, Copy)]
struct BackwardShared<'a, F> {
    /// `G_i: (batch, out_i)`, the gradient arriving at the upper layer.
    grad: ArrayView2<'a, F>,
    /// `X: (batch, in)`, the network's input (for the first layer's update).
    input: ArrayView2<'a, F>,
    /// The activation between the lower and the upper layer.
    activation: Option<ActivationKind>,
    /// The fused update, or `None` to store the gradients.
    update: Option<PlainUpdate<F>>,
}

/// A block of weights and their gradients, split alike.
struct Weights<'a, F> {
    values: ArrayViewMut2<'a, F>,
    grads: ArrayViewMut2<'a, F>,
}

impl<F: Float> Weights<'_, F> {
    fn split_at(self, axis: Axis, at: usize) -> (Self, Self) {
        let (values_left, values_right) = self.values.split_at(axis, at);
        let (grads_left, grads_right) = self.grads.split_at(axis, at);
        (
            Weights {
                values: values_left,
                grads: grads_left,
            },
            Weights {
                values: values_right,
                grads: grads_right,
            },
        )
    }

    /// `W = shrink W - lr a^T b` with an update (one GEMM, `beta = shrink`), else
    /// `dW = a^T b`; `a: (batch, rows)`, `b: (batch, cols)`, `W: (rows, cols)`.
    fn step(self, update: Option<PlainUpdate<F>>, a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) {
        match update {
            Some(update) => gemm(
                -update.lr(),
                a.t(),
                b,
                update.shrink(ParameterKind::Weight),
                self.values,
            ),
            None => gemm(F::one(), a.t(), b, F::zero(), self.grads),
        }
    }
}

/// One core's units `s` of the lower layer `i - 1` in a backward join.
struct BackwardSlice<'a, F> {
    /// `W_i[:, s]: (out_i, units)`, the upper layer's columns, and their gradients.
    upper: Weights<'a, F>,
    /// `H_{i-1}[:, s]: (batch, units)`.
    hidden: ArrayView2<'a, F>,
    /// `G_{i-1}[:, s]: (batch, units)`, written.
    grad_below: ArrayViewMut2<'a, F>,
    /// `b_{i-1}[s]` and its gradient.
    bias: ArrayViewMut1<'a, F>,
    d_bias: ArrayViewMut1<'a, F>,
    /// `W_0[s, :]: (units, in)` and its gradient when the lower layer is the first.
    first_layer: Option<Weights<'a, F>>,
}

impl<F: Float> Units for BackwardSlice<'_, F> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let (upper_left, upper_right) = self.upper.split_at(Axis(1), at);
        let (hidden_left, hidden_right) = self.hidden.split_at(Axis(1), at);
        let (grad_left, grad_right) = self.grad_below.split_at(Axis(1), at);
        let (bias_left, bias_right) = self.bias.split_at(Axis(0), at);
        let (d_bias_left, d_bias_right) = self.d_bias.split_at(Axis(0), at);
        let (first_left, first_right) = match self.first_layer {
            Some(weights) => {
                let (left, right) = weights.split_at(Axis(0), at);
                (Some(left), Some(right))
            }
            None => (None, None),
        };
        (
            Self {
                upper: upper_left,
                hidden: hidden_left,
                grad_below: grad_left,
                bias: bias_left,
                d_bias: d_bias_left,
                first_layer: first_left,
            },
            Self {
                upper: upper_right,
                hidden: hidden_right,
                grad_below: grad_right,
                bias: bias_right,
                d_bias: d_bias_right,
                first_layer: first_right,
            },
        )
    }
}

impl<F: Float> BackwardSlice<'_, F> {
    /// The lower layer's gradient on these units, then every update (or gradient) they
    /// own (see the module docs).
    fn run(mut self, shared: BackwardShared<'_, F>) {
        let BackwardShared {
            grad,
            input,
            activation,
            update,
        } = shared;
        // G_{i-1}[:, s] = G_i W_i[:, s] (with the weights of the forward pass) ...
        gemm(
            F::one(),
            grad,
            self.upper.values.view(),
            F::zero(),
            self.grad_below.view_mut(),
        );
        // ... times f'(H_{i-1}[:, s]).
        if let Some(kind) = activation {
            kind.scale_by_derivative(self.grad_below.view_mut(), self.hidden);
        }
        // W_i[:, s] = shrink W_i[:, s] - lr G_i^T H_{i-1}[:, s], or dW_i[:, s] = G_i^T H_{i-1}[:, s]
        self.upper.step(update, grad, self.hidden);
        bias_step(update, self.grad_below.view(), self.bias, self.d_bias);
        // W_0[s, :] = shrink W_0[s, :] - lr G_0[:, s]^T X, or dW_0[s, :] = G_0[:, s]^T X
        if let Some(weights) = self.first_layer {
            weights.step(update, self.grad_below.view(), input);
        }
    }
}
