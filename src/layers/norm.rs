//! Normalisation layers: batch normalisation over the batch (PyTorch's `nn.BatchNorm1d`
//! on `(batch, C)` and `nn.BatchNorm2d` on NCHW images, `affine=True`,
//! `track_running_stats=True`) and layer normalisation over each row (`nn.LayerNorm` on
//! the last dimension, `elementwise_affine=True`).
//!
//! Shapes: `x, y: (batch, C * spatial)` where `spatial` is `H * W` for images and 1 for
//! features; `weight`, `bias`, `running_mean`, `running_var`: `(C)`.
//!
//! Both normalise a group of `n` values (a channel over the batch and its `spatial`
//! positions, or a row): `xhat = (x - mean) * invstd`, `invstd = 1 / sqrt(var + eps)`
//! with the biased variance, and `y = xhat * weight + bias`. With `dxhat = dy * weight`,
//! the input gradient through the group's own statistics is
//! `dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))`; with fixed
//! statistics (batch normalisation in evaluation) it is `dx = dxhat * invstd`. The
//! parameter gradients are `d_weight = sum(dy * xhat)` and `d_bias = sum(dy)`,
//! overwritten by each `backward`.
//!
//! The statistics and the gradient sums are computed in f64, each group serially in
//! row-major order, so the results do not depend on how many threads share the groups
//! (batch normalisation splits its channels, layer normalisation its rows, across
//! rayon's pool when the batch is large).

use ndarray::{
    Array1, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3, Axis,
    Zip,
};

use crate::buffer::Buffer;
use crate::float::Float;
use crate::module::{Module, Parameter, ParameterKind};
use crate::threads::{worth_parallel, CHEAP_ELEMENT};

/// Relative cost per element of a normalisation: three cheap passes (mean, variance,
/// transform) for the serial/parallel choice.
const NORM_ELEMENT: usize = 3 * CHEAP_ELEMENT;

/// The mean and `1 / sqrt(var + eps)` that one channel was normalised with.
#[derive(Clone, Copy, Debug, Default)]
struct ChannelStats<F> {
    mean: F,
    invstd: F,
}

/// The public accessors of a normalisation layer's `affine` (the same for both layers);
/// `$width` names the vectors' length in the docs.
macro_rules! affine_accessors {
    ($width:literal) => {
        #[doc = concat!("The scale `", $width, "`.")]
        pub fn weight(&self) -> ArrayView1<'_, F> {
            self.affine.weight.view()
        }

        /// The scale, to change in place.
        pub fn weight_mut(&mut self) -> ArrayViewMut1<'_, F> {
            self.affine.weight.view_mut()
        }

        #[doc = concat!("The shift `", $width, "`.")]
        pub fn bias(&self) -> ArrayView1<'_, F> {
            self.affine.bias.view()
        }

        /// The shift, to change in place.
        pub fn bias_mut(&mut self) -> ArrayViewMut1<'_, F> {
            self.affine.bias.view_mut()
        }

        #[doc = concat!("dL/d(weight) `", $width, "` from the last `backward`.")]
        pub fn d_weight(&self) -> ArrayView1<'_, F> {
            self.affine.d_weight.view()
        }

        #[doc = concat!("dL/d(bias) `", $width, "` from the last `backward`.")]
        pub fn d_bias(&self) -> ArrayView1<'_, F> {
            self.affine.d_bias.view()
        }
    };
}

/// Batch normalisation: in training `y = (x - mean) / sqrt(var + eps) * weight + bias`
/// with the batch's per-channel mean and biased variance, and the running statistics
/// updated as `r = (1 - momentum) r + momentum s` (the unbiased variance for `running_var`);
/// in evaluation the running statistics replace the batch's.
#[derive(Clone, Debug)]
pub struct BatchNorm<F> {
    spatial: usize,
    eps: f64,
    momentum: f64,
    training: bool,
    affine: Affine<F>,
    running_mean: Array1<F>,
    running_var: Array1<F>,
    num_batches_tracked: u64,
    /// `(C)`: what the last `forward` normalised with (the batch's or the running ones).
    stats: Vec<ChannelStats<F>>,
    /// Whether the last `forward` used the batch's statistics (so that `backward`
    /// differentiates through them).
    used_batch_stats: bool,
    /// `xhat: (batch, C * spatial)` of the last `forward`.
    normalised: Buffer<F>,
    output: Buffer<F>,
    grad_input: Buffer<F>,
}

impl<F: Float> BatchNorm<F> {
    /// A layer over `channels` channels of `spatial` values each (1 for `BatchNorm1d`),
    /// in training mode: weight 1, bias 0, running mean 0, running variance 1.
    ///
    /// # Panics
    /// If `spatial` is 0.
    #[track_caller]
    pub fn new(channels: usize, spatial: usize, eps: f64, momentum: f64) -> Self {
        assert!(spatial > 0, "BatchNorm::new: spatial must be at least 1");
        Self {
            spatial,
            eps,
            momentum,
            training: true,
            affine: Affine::new(channels),
            running_mean: Array1::zeros(channels),
            running_var: Array1::ones(channels),
            num_batches_tracked: 0,
            stats: vec![ChannelStats::default(); channels],
            used_batch_stats: true,
            normalised: Buffer::new(),
            output: Buffer::new(),
            grad_input: Buffer::new(),
        }
    }

    /// Channels (`C`).
    pub fn channels(&self) -> usize {
        self.affine.weight.len()
    }

    /// Values per channel in one example (`H * W`, or 1).
    pub fn spatial(&self) -> usize {
        self.spatial
    }

    /// `eps`.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// `momentum`.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// Whether the layer normalises with the batch's statistics (training) or the
    /// running ones (evaluation).
    pub fn training(&self) -> bool {
        self.training
    }

    /// Switches between training and evaluation.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    affine_accessors!("(C)");

    /// The running mean `(C)`.
    pub fn running_mean(&self) -> ArrayView1<'_, F> {
        self.running_mean.view()
    }

    /// The running mean, to change in place.
    pub fn running_mean_mut(&mut self) -> ArrayViewMut1<'_, F> {
        self.running_mean.view_mut()
    }

    /// The running variance `(C)`.
    pub fn running_var(&self) -> ArrayView1<'_, F> {
        self.running_var.view()
    }

    /// The running variance, to change in place.
    pub fn running_var_mut(&mut self) -> ArrayViewMut1<'_, F> {
        self.running_var.view_mut()
    }

    /// Training batches seen (PyTorch's `num_batches_tracked`).
    pub fn num_batches_tracked(&self) -> u64 {
        self.num_batches_tracked
    }

    /// Sets `num_batches_tracked` (when loading a model).
    pub fn set_num_batches_tracked(&mut self, batches: u64) {
        self.num_batches_tracked = batches;
    }

    /// Whether per-channel work on `elements` values is worth splitting across the pool.
    fn parallel(&self, elements: usize) -> bool {
        self.channels() > 1 && worth_parallel(elements, NORM_ELEMENT)
    }
}

/// `(batch, C * spatial)` as `(batch, C, spatial)`.
fn by_channel<F>(x: ArrayView2<'_, F>, channels: usize, spatial: usize) -> ArrayView3<'_, F> {
    x.into_shape_with_order((x.nrows(), channels, spatial))
        // Cannot fail: callers pass standard layouts of `C * spatial` columns.
        .expect("standard layout of C * spatial columns")
}

/// `(batch, C * spatial)` as `(batch, C, spatial)`, mutable.
fn by_channel_mut<F>(
    x: ArrayViewMut2<'_, F>,
    channels: usize,
    spatial: usize,
) -> ArrayViewMut3<'_, F> {
    let rows = x.nrows();
    x.into_shape_with_order((rows, channels, spatial))
        // Cannot fail: buffers are in standard layout, of `C * spatial` columns.
        .expect("standard layout of C * spatial columns")
}

/// The mean and the sum of squared deviations from it of `count` values, in f64, in
/// the iterator's order (two passes).
fn moments<'a, F: Float>(values: impl Iterator<Item = &'a F> + Clone, count: usize) -> (f64, f64) {
    let mean = values.clone().map(|&x| x.to_f64()).sum::<f64>() / count as f64;
    let squares = values.map(|&x| (x.to_f64() - mean).powi(2)).sum::<f64>();
    (mean, squares)
}

/// `1 / sqrt(var + eps)`, and 0 where both are 0 (PyTorch's `InvStd`).
fn inverse_std(var: f64, eps: f64) -> f64 {
    if var == 0.0 && eps == 0.0 {
        0.0
    } else {
        1.0 / (var + eps).sqrt()
    }
}

impl<F: Float> Module<F> for BatchNorm<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // x: (batch, C * spatial) -> y: (batch, C * spatial), statistics per channel over
        // (batch, spatial)
        let (channels, spatial) = (self.channels(), self.spatial);
        assert_eq!(
            input.ncols(),
            channels * spatial,
            "BatchNorm::forward: input has {} values per row, the layer expects {channels} \
             channels of {spatial}",
            input.ncols()
        );
        let batch = input.nrows();
        let parallel = self.parallel(input.len());
        // Copies only an input that is not in row-major layout.
        let input = input.as_standard_layout();
        let x = by_channel(input.view(), channels, spatial);
        self.used_batch_stats = self.training;
        if self.training {
            self.num_batches_tracked += 1;
            if batch > 0 {
                self.batch_statistics(x.view(), parallel);
            }
        } else {
            self.running_statistics();
        }
        let mut xhat = by_channel_mut(
            self.normalised.resize(batch, channels * spatial),
            channels,
            spatial,
        );
        let mut y = by_channel_mut(
            self.output.resize(batch, channels * spatial),
            channels,
            spatial,
        );
        let zip = Zip::from(x.axis_iter(Axis(1)))
            .and(xhat.axis_iter_mut(Axis(1)))
            .and(y.axis_iter_mut(Axis(1)))
            .and(&self.stats)
            .and(&self.affine.weight)
            .and(&self.affine.bias);
        let normalise = |x: ArrayView2<'_, F>,
                         xhat: ArrayViewMut2<'_, F>,
                         y: ArrayViewMut2<'_, F>,
                         stats: &ChannelStats<F>,
                         &weight: &F,
                         &bias: &F| {
            Zip::from(xhat).and(y).and(x).for_each(|xhat, y, &x| {
                *xhat = (x - stats.mean) * stats.invstd;
                *y = *xhat * weight + bias;
            });
        };
        if parallel {
            zip.par_for_each(normalise);
        } else {
            zip.for_each(normalise);
        }
        self.output.view()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // dL/dy: (batch, C * spatial), xhat: (batch, C * spatial) -> dL/dx: (batch, C *
        // spatial), d_weight: (C), d_bias: (C)
        let (channels, spatial) = (self.channels(), self.spatial);
        let (batch, columns) = self.normalised.shape();
        assert_eq!(
            grad_output.dim(),
            (batch, columns),
            "BatchNorm::backward: grad_output shape differs from the last forward's output"
        );
        let parallel = self.parallel(grad_output.len());
        let grad_output = grad_output.as_standard_layout();
        let dy = by_channel(grad_output.view(), channels, spatial);
        let xhat = by_channel(self.normalised.view(), channels, spatial);
        let mut dx = by_channel_mut(self.grad_input.resize(batch, columns), channels, spatial);
        let count = (batch * spatial) as f64;
        let (stats, weight, through_stats) =
            (&self.stats, &self.affine.weight, self.used_batch_stats);
        let zip = Zip::indexed(dx.axis_iter_mut(Axis(1)))
            .and(dy.axis_iter(Axis(1)))
            .and(xhat.axis_iter(Axis(1)))
            .and(&mut self.affine.d_weight)
            .and(&mut self.affine.d_bias);
        let channel_backward = |channel: usize,
                                dx: ArrayViewMut2<'_, F>,
                                dy: ArrayView2<'_, F>,
                                xhat: ArrayView2<'_, F>,
                                d_weight: &mut F,
                                d_bias: &mut F| {
            let (mut sum_dy, mut sum_dy_xhat) = (0.0, 0.0);
            for (&dy, &xhat) in dy.iter().zip(xhat.iter()) {
                sum_dy += dy.to_f64();
                sum_dy_xhat += dy.to_f64() * xhat.to_f64();
            }
            *d_bias = F::from_f64(sum_dy);
            *d_weight = F::from_f64(sum_dy_xhat);
            let scale = weight[channel] * stats[channel].invstd;
            if through_stats {
                let mean_dy = F::from_f64(sum_dy / count);
                let mean_dy_xhat = F::from_f64(sum_dy_xhat / count);
                Zip::from(dx).and(dy).and(xhat).for_each(|dx, &dy, &xhat| {
                    *dx = scale * (dy - mean_dy - xhat * mean_dy_xhat);
                });
            } else {
                Zip::from(dx).and(dy).for_each(|dx, &dy| *dx = dy * scale);
            }
        };
        if parallel {
            zip.par_for_each(channel_backward);
        } else {
            zip.for_each(channel_backward);
        }
        self.grad_input.view()
    }

    /// Weight (`ParameterKind::Weight`, layer 0) then bias (`ParameterKind::Bias`).
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        self.affine.visit(visitor);
    }
}

impl<F: Float> BatchNorm<F> {
    /// Each channel's batch mean and `invstd` into `stats`, and the running statistics
    /// updated (in f64, PyTorch's order): `x: (batch, C, spatial)`, `batch > 0`.
    fn batch_statistics(&mut self, x: ArrayView3<'_, F>, parallel: bool) {
        let count = x.len_of(Axis(0)) * self.spatial;
        let (eps, momentum) = (self.eps, self.momentum);
        let zip = Zip::from(x.axis_iter(Axis(1)))
            .and(&mut self.stats)
            .and(&mut self.running_mean)
            .and(&mut self.running_var);
        let channel_statistics = |x: ArrayView2<'_, F>,
                                  stats: &mut ChannelStats<F>,
                                  running_mean: &mut F,
                                  running_var: &mut F| {
            let (mean, squares) = moments(x.iter(), count);
            let var = squares / count as f64;
            // One value per channel has no unbiased variance: its biased one (0) is used.
            let unbiased_var = if count > 1 {
                squares / (count - 1) as f64
            } else {
                var
            };
            *running_mean = F::from_f64(momentum * mean + (1.0 - momentum) * running_mean.to_f64());
            *running_var =
                F::from_f64(momentum * unbiased_var + (1.0 - momentum) * running_var.to_f64());
            *stats = ChannelStats {
                mean: F::from_f64(mean),
                invstd: F::from_f64(inverse_std(var, eps)),
            };
        };
        if parallel {
            zip.par_for_each(channel_statistics);
        } else {
            zip.for_each(channel_statistics);
        }
    }

    /// Each channel's running mean and `invstd` into `stats`.
    fn running_statistics(&mut self) {
        let eps = self.eps;
        Zip::from(&mut self.stats)
            .and(&self.running_mean)
            .and(&self.running_var)
            .for_each(|stats, &mean, &var| {
                *stats = ChannelStats {
                    mean,
                    invstd: F::from_f64(inverse_std(var.to_f64(), eps)),
                };
            });
    }
}

/// A normalisation's scale and shift `(width)`, and their gradients from the last
/// `backward`.
#[derive(Clone, Debug)]
struct Affine<F> {
    weight: Array1<F>,
    bias: Array1<F>,
    d_weight: Array1<F>,
    d_bias: Array1<F>,
}

impl<F: Float> Affine<F> {
    /// Scale 1, shift 0.
    fn new(width: usize) -> Self {
        Self {
            weight: Array1::ones(width),
            bias: Array1::zeros(width),
            d_weight: Array1::zeros(width),
            d_bias: Array1::zeros(width),
        }
    }

    /// Calls `visitor` with the weight (`ParameterKind::Weight`, layer 0), then the bias.
    fn visit(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        visitor(Parameter::of_layer(
            ParameterKind::Weight,
            &mut self.weight,
            &self.d_weight,
        ));
        visitor(Parameter::of_layer(
            ParameterKind::Bias,
            &mut self.bias,
            &self.d_bias,
        ));
    }
}

/// Layer normalisation over each row's `features`: `y = (x - mean) / sqrt(var + eps) *
/// weight + bias` with the row's mean and biased variance; the same in training and
/// evaluation.
#[derive(Clone, Debug)]
pub struct LayerNorm<F> {
    eps: f64,
    affine: Affine<F>,
    /// `(batch)`: each row's `1 / sqrt(var + eps)` from the last `forward` (grow-only).
    invstd: Vec<F>,
    /// `xhat: (batch, features)` of the last `forward`.
    normalised: Buffer<F>,
    output: Buffer<F>,
    grad_input: Buffer<F>,
}

impl<F: Float> LayerNorm<F> {
    /// A layer over rows of `features` values: weight 1, bias 0.
    pub fn new(features: usize, eps: f64) -> Self {
        Self {
            eps,
            affine: Affine::new(features),
            invstd: Vec::new(),
            normalised: Buffer::new(),
            output: Buffer::new(),
            grad_input: Buffer::new(),
        }
    }

    /// The row width.
    pub fn features(&self) -> usize {
        self.affine.weight.len()
    }

    /// `eps`.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    affine_accessors!("(features)");
}

impl<F: Float> Module<F> for LayerNorm<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // x: (batch, features) -> y: (batch, features), statistics per row
        let features = self.features();
        assert_eq!(
            input.ncols(),
            features,
            "LayerNorm::forward: input has {} features, the layer expects {features}",
            input.ncols()
        );
        let batch = input.nrows();
        let parallel = worth_parallel(input.len(), NORM_ELEMENT);
        let eps = self.eps;
        self.invstd.resize(batch, F::zero());
        let (weight, bias) = (&self.affine.weight, &self.affine.bias);
        let mut xhat = self.normalised.resize(batch, features);
        let mut y = self.output.resize(batch, features);
        let zip = Zip::from(input.rows())
            .and(xhat.rows_mut())
            .and(y.rows_mut())
            .and(&mut self.invstd[..]);
        let normalise_row = |x: ArrayView1<'_, F>,
                             xhat: ArrayViewMut1<'_, F>,
                             y: ArrayViewMut1<'_, F>,
                             invstd: &mut F| {
            let (mean, squares) = moments(x.iter(), features);
            *invstd = F::from_f64(inverse_std(squares / features as f64, eps));
            let (mean, invstd) = (F::from_f64(mean), *invstd);
            Zip::from(xhat)
                .and(y)
                .and(x)
                .and(weight)
                .and(bias)
                .for_each(|xhat, y, &x, &weight, &bias| {
                    *xhat = (x - mean) * invstd;
                    *y = *xhat * weight + bias;
                });
        };
        if parallel {
            zip.par_for_each(normalise_row);
        } else {
            zip.for_each(normalise_row);
        }
        self.output.view()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // dL/dy: (batch, features), xhat: (batch, features) -> dL/dx: (batch, features),
        // d_weight: (features), d_bias: (features)
        let xhat = self.normalised.view();
        let (batch, features) = xhat.dim();
        assert_eq!(
            grad_output.dim(),
            (batch, features),
            "LayerNorm::backward: grad_output shape differs from the last forward's output"
        );
        // The parameter gradients: sums over the rows, row after row.
        super::column_sums(grad_output, self.affine.d_bias.view_mut());
        self.affine.d_weight.fill(F::zero());
        for (dy, xhat) in grad_output.rows().into_iter().zip(xhat.rows()) {
            Zip::from(&mut self.affine.d_weight)
                .and(dy)
                .and(xhat)
                .for_each(|sum, &dy, &xhat| *sum += dy * xhat);
        }
        let weight = &self.affine.weight;
        let parallel = worth_parallel(grad_output.len(), NORM_ELEMENT);
        let mut dx = self.grad_input.resize(batch, features);
        let zip = Zip::from(dx.rows_mut())
            .and(grad_output.rows())
            .and(xhat.rows())
            .and(&self.invstd[..batch]);
        let row_backward = |dx: ArrayViewMut1<'_, F>,
                            dy: ArrayView1<'_, F>,
                            xhat: ArrayView1<'_, F>,
                            &invstd: &F| {
            // dxhat = dy * weight, its mean and its mean product with xhat, in f64.
            let (mut sum, mut sum_xhat) = (0.0, 0.0);
            for ((&dy, &xhat), &weight) in dy.iter().zip(&xhat).zip(weight) {
                let dxhat = (dy * weight).to_f64();
                sum += dxhat;
                sum_xhat += dxhat * xhat.to_f64();
            }
            let mean = F::from_f64(sum / features as f64);
            let mean_xhat = F::from_f64(sum_xhat / features as f64);
            Zip::from(dx)
                .and(dy)
                .and(xhat)
                .and(weight)
                .for_each(|dx, &dy, &xhat, &weight| {
                    *dx = invstd * (dy * weight - mean - xhat * mean_xhat);
                });
        };
        if parallel {
            zip.par_for_each(row_backward);
        } else {
            zip.for_each(row_backward);
        }
        self.grad_input.view()
    }

    /// Weight (`ParameterKind::Weight`, layer 0) then bias (`ParameterKind::Bias`).
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        self.affine.visit(visitor);
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::layers::testing;

    /// Seeded inputs in this file's range.
    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        testing::random(rows, cols, -2.0..3.0, seed)
    }

    fn random_vec(len: usize, seed: u64) -> Vec<f64> {
        random(1, len, seed).into_raw_vec_and_offset().0
    }

    fn assert_close(actual: ArrayView2<'_, f64>, expected: ArrayView2<'_, f64>, tol: f64) {
        assert_eq!(actual.dim(), expected.dim());
        for ((index, a), e) in actual.indexed_iter().zip(expected) {
            assert!(
                (a - e).abs() <= tol * (1.0 + e.abs()),
                "at {index:?}: {a} vs {e}"
            );
        }
    }

    fn assert_close_1d(actual: ArrayView1<'_, f64>, expected: &[f64], tol: f64) {
        assert_eq!(actual.len(), expected.len());
        for (index, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                (a - e).abs() <= tol * (1.0 + e.abs()),
                "at {index}: {a} vs {e}"
            );
        }
    }

    /// A batch normalisation with the given parameters.
    fn batch_norm(channels: usize, spatial: usize, weight: &[f64], bias: &[f64]) -> BatchNorm<f64> {
        let mut layer = BatchNorm::new(channels, spatial, 1e-5, 0.1);
        layer.weight_mut().assign(&ArrayView1::from(weight));
        layer.bias_mut().assign(&ArrayView1::from(bias));
        layer
    }

    /// The plain-loop oracle of training-mode batch normalisation: `y`, and each
    /// channel's mean and unbiased variance.
    fn reference_batch_norm(
        x: &Array2<f64>,
        channels: usize,
        spatial: usize,
        weight: &[f64],
        bias: &[f64],
        eps: f64,
    ) -> (Array2<f64>, Vec<f64>, Vec<f64>) {
        let batch = x.nrows();
        let n = (batch * spatial) as f64;
        let mut y = Array2::zeros(x.raw_dim());
        let (mut means, mut unbiased) = (vec![], vec![]);
        for c in 0..channels {
            let mut sum = 0.0;
            for b in 0..batch {
                for s in 0..spatial {
                    sum += x[(b, c * spatial + s)];
                }
            }
            let mean = sum / n;
            let mut squares = 0.0;
            for b in 0..batch {
                for s in 0..spatial {
                    squares += (x[(b, c * spatial + s)] - mean).powi(2);
                }
            }
            let var = squares / n;
            for b in 0..batch {
                for s in 0..spatial {
                    let j = c * spatial + s;
                    y[(b, j)] = (x[(b, j)] - mean) / (var + eps).sqrt() * weight[c] + bias[c];
                }
            }
            means.push(mean);
            unbiased.push(squares / (n - 1.0));
        }
        (y, means, unbiased)
    }

    #[test]
    fn batch_norm_forward_and_running_statistics_match_the_plain_loops() {
        for (channels, spatial, batch) in [(3, 4, 5), (4, 1, 6)] {
            let weight = random_vec(channels, 1);
            let bias = random_vec(channels, 2);
            let mut layer = batch_norm(channels, spatial, &weight, &bias);
            let first = random(batch, channels * spatial, 3);
            let second = random(batch, channels * spatial, 4).mapv(|v| 2.0 * v + 1.0);
            let (y, mean1, var1) =
                reference_batch_norm(&first, channels, spatial, &weight, &bias, 1e-5);
            assert_close(layer.forward(first.view()), y.view(), 1e-13);
            let (y, mean2, var2) =
                reference_batch_norm(&second, channels, spatial, &weight, &bias, 1e-5);
            assert_close(layer.forward(second.view()), y.view(), 1e-13);
            let running_mean: Vec<f64> = (0..channels)
                .map(|c| 0.9 * (0.9 * 0.0 + 0.1 * mean1[c]) + 0.1 * mean2[c])
                .collect();
            let running_var: Vec<f64> = (0..channels)
                .map(|c| 0.9 * (0.9 * 1.0 + 0.1 * var1[c]) + 0.1 * var2[c])
                .collect();
            assert_close_1d(layer.running_mean(), &running_mean, 1e-14);
            assert_close_1d(layer.running_var(), &running_var, 1e-14);
            assert_eq!(layer.num_batches_tracked(), 2);

            // Evaluation: the running statistics, and nothing updated.
            layer.set_training(false);
            let y = layer.forward(first.view()).to_owned();
            for b in 0..batch {
                for c in 0..channels {
                    for s in 0..spatial {
                        let j = c * spatial + s;
                        let expected = (first[(b, j)] - running_mean[c])
                            / (running_var[c] + 1e-5).sqrt()
                            * weight[c]
                            + bias[c];
                        assert!((y[(b, j)] - expected).abs() < 1e-13);
                    }
                }
            }
            assert_close_1d(layer.running_mean(), &running_mean, 1e-14);
            assert_eq!(layer.num_batches_tracked(), 2);
        }
    }

    /// The sum of `y * r` after a forward of `x` through `layer` (a clone, so that the
    /// layer itself is unchanged).
    fn loss<M: Module<f64> + Clone>(layer: &M, x: &Array2<f64>, r: &Array2<f64>) -> f64 {
        (&layer.clone().forward(x.view()) * r).sum()
    }

    /// Central differences of `loss` in each input and in each parameter, against
    /// `backward`'s gradients.
    fn check_gradients<M: Module<f64> + Clone>(layer: &M, x: &Array2<f64>, tol: f64) {
        let r = random(x.nrows(), x.ncols(), 99);
        let mut analytic = layer.clone();
        analytic.forward(x.view());
        let dx = analytic.backward(r.view()).to_owned();
        let h = 1e-5;
        for index in 0..x.len() {
            let (i, j) = (index / x.ncols(), index % x.ncols());
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[(i, j)] += h;
            minus[(i, j)] -= h;
            let numeric = (loss(layer, &plus, &r) - loss(layer, &minus, &r)) / (2.0 * h);
            assert!(
                (dx[(i, j)] - numeric).abs() < tol,
                "dx[{i}, {j}]: {} vs {numeric}",
                dx[(i, j)]
            );
        }
        let mut grads = vec![];
        analytic.visit_parameters(&mut |p| grads.push((p.key, p.grad.to_vec())));
        for (slot, (key, grad)) in grads.iter().enumerate() {
            for (k, &grad) in grad.iter().enumerate() {
                let shifted = |delta: f64| {
                    let mut moved = layer.clone();
                    let mut seen = 0;
                    moved.visit_parameters(&mut |p| {
                        if seen == slot {
                            p.value[k] += delta;
                        }
                        seen += 1;
                    });
                    loss(&moved, x, &r)
                };
                let numeric = (shifted(h) - shifted(-h)) / (2.0 * h);
                assert!(
                    (grad - numeric).abs() < tol,
                    "{key}[{k}]: {grad} vs {numeric}"
                );
            }
        }
    }

    #[test]
    fn batch_norm_backward_matches_finite_differences_in_training() {
        for (channels, spatial, batch) in [(3, 4, 5), (4, 1, 6)] {
            let layer = batch_norm(
                channels,
                spatial,
                &random_vec(channels, 5),
                &random_vec(channels, 6),
            );
            check_gradients(&layer, &random(batch, channels * spatial, 7), 1e-8);
        }
    }

    #[test]
    fn batch_norm_backward_matches_finite_differences_in_evaluation() {
        for (channels, spatial, batch) in [(3, 4, 5), (4, 1, 6)] {
            let mut layer = batch_norm(
                channels,
                spatial,
                &random_vec(channels, 8),
                &random_vec(channels, 9),
            );
            layer
                .running_mean_mut()
                .assign(&ArrayView1::from(&random_vec(channels, 10)));
            layer
                .running_var_mut()
                .assign(&ArrayView1::from(&random_vec(channels, 11)).mapv(|v| v.abs() + 0.5));
            layer.set_training(false);
            check_gradients(&layer, &random(batch, channels * spatial, 12), 1e-8);
        }
    }

    #[test]
    fn batch_norm_gradients_are_overwritten_not_accumulated() {
        let mut layer = batch_norm(2, 3, &[1.5, -0.5], &[0.1, 0.2]);
        let x = random(4, 6, 13);
        let dy = random(4, 6, 14);
        layer.forward(x.view());
        let dx = layer.backward(dy.view()).to_owned();
        let (d_weight, d_bias) = (layer.d_weight().to_owned(), layer.d_bias().to_owned());
        layer.forward(x.view());
        assert_eq!(layer.backward(dy.view()), dx);
        assert_eq!(layer.d_weight(), d_weight);
        assert_eq!(layer.d_bias(), d_bias);
    }

    #[test]
    fn batch_norm_of_one_value_per_channel_does_not_panic() {
        let mut layer = batch_norm(3, 1, &[1.0, 2.0, 3.0], &[0.5, 0.6, 0.7]);
        let y = layer
            .forward(Array2::from_elem((1, 3), 4.0).view())
            .to_owned();
        assert_eq!(
            y,
            Array2::from_shape_vec((1, 3), vec![0.5, 0.6, 0.7]).unwrap()
        );
        // The biased variance (0) in the running update: 0.9 * 1 + 0.1 * 0.
        assert_close_1d(layer.running_var(), &[0.9; 3], 1e-15);
        assert_close_1d(layer.running_mean(), &[0.4; 3], 1e-15);
        assert!(layer
            .backward(Array2::ones((1, 3)).view())
            .iter()
            .all(|g| g.is_finite()));
    }

    #[test]
    fn a_smaller_batch_after_a_larger_one_is_computed_afresh() {
        let big = random(9, 8, 15);
        let small = random(3, 8, 16);
        let dy = random(3, 8, 17);
        let fresh_batch_norm = || batch_norm(2, 4, &[1.2, 0.7], &[0.0, -0.3]);
        let mut reused = fresh_batch_norm();
        reused.forward(big.view());
        reused.backward(big.view());
        let mut fresh = fresh_batch_norm();
        assert_eq!(reused.forward(small.view()), fresh.forward(small.view()));
        assert_eq!(reused.backward(dy.view()), fresh.backward(dy.view()));
        assert_eq!(reused.d_weight(), fresh.d_weight());

        let mut reused = LayerNorm::<f64>::new(8, 1e-5);
        reused.forward(big.view());
        reused.backward(big.view());
        let mut fresh = LayerNorm::<f64>::new(8, 1e-5);
        assert_eq!(reused.forward(small.view()), fresh.forward(small.view()));
        assert_eq!(reused.backward(dy.view()), fresh.backward(dy.view()));
        assert_eq!(reused.d_weight(), fresh.d_weight());
    }

    #[test]
    fn a_column_major_input_gives_the_same_results() {
        let x = random(5, 6, 18);
        let dy = random(5, 6, 19);
        // The same values in column-major layout.
        let column_major =
            |a: &Array2<f64>| a.t().as_standard_layout().into_owned().reversed_axes();
        let (x_f, dy_f) = (column_major(&x), column_major(&dy));
        assert_eq!(x_f, x);
        assert!(!x_f.is_standard_layout());
        let mut layer = batch_norm(3, 2, &[1.0, 2.0, 3.0], &[0.1, 0.2, 0.3]);
        let y = layer.forward(x.view()).to_owned();
        let dx = layer.backward(dy.view()).to_owned();
        assert_eq!(layer.forward(x_f.view()), y);
        assert_eq!(layer.backward(dy_f.view()), dx);
        let mut layer = LayerNorm::<f64>::new(6, 1e-5);
        let y = layer.forward(x.view()).to_owned();
        let dx = layer.backward(dy.view()).to_owned();
        assert_eq!(layer.forward(x_f.view()), y);
        assert_eq!(layer.backward(dy_f.view()), dx);
    }

    #[test]
    fn f32_agrees_with_f64() {
        let x = random(6, 12, 20);
        let dy = random(6, 12, 21);
        let mut wide = batch_norm(3, 4, &[1.0, -2.0, 0.5], &[0.1, 0.2, 0.3]);
        let mut narrow = BatchNorm::<f32>::new(3, 4, 1e-5, 0.1);
        narrow
            .weight_mut()
            .assign(&wide.weight().mapv(|v| v as f32));
        narrow.bias_mut().assign(&wide.bias().mapv(|v| v as f32));
        let mut wide_ln = LayerNorm::<f64>::new(12, 1e-5);
        let mut narrow_ln = LayerNorm::<f32>::new(12, 1e-5);
        let (x32, dy32) = (x.mapv(|v| v as f32), dy.mapv(|v| v as f32));
        let widen = |a: ArrayView2<'_, f32>| a.mapv(f64::from);
        for _ in 0..2 {
            assert_close(
                widen(narrow.forward(x32.view())).view(),
                wide.forward(x.view()),
                1e-5,
            );
            assert_close(
                widen(narrow.backward(dy32.view())).view(),
                wide.backward(dy.view()),
                1e-5,
            );
            assert_close(
                widen(narrow_ln.forward(x32.view())).view(),
                wide_ln.forward(x.view()),
                1e-5,
            );
            assert_close(
                widen(narrow_ln.backward(dy32.view())).view(),
                wide_ln.backward(dy.view()),
                1e-5,
            );
            narrow.set_training(false);
            wide.set_training(false);
        }
        let running: Vec<f64> = narrow.running_var().iter().map(|&v| f64::from(v)).collect();
        assert_close_1d(wide.running_var(), &running, 1e-6);
    }

    #[test]
    fn the_parallel_path_equals_the_serial_one() {
        // 64 x 8 channels x 64 positions: past the threshold.
        let x = random(64, 8 * 64, 22);
        let dy = random(64, 8 * 64, 23);
        let run = || {
            let mut layer = batch_norm(8, 64, &random_vec(8, 24), &random_vec(8, 25));
            let y = layer.forward(x.view()).to_owned();
            let dx = layer.backward(dy.view()).to_owned();
            let mut ln = LayerNorm::<f64>::new(8 * 64, 1e-5);
            let y_ln = ln.forward(x.view()).to_owned();
            let dx_ln = ln.backward(dy.view()).to_owned();
            (
                y,
                dx,
                layer.d_weight().to_owned(),
                layer.running_var().to_owned(),
                y_ln,
                dx_ln,
                ln.d_weight().to_owned(),
            )
        };
        let serial = run();
        let parallel = crate::threads::on_pool(3, || {
            assert!(worth_parallel(x.len(), NORM_ELEMENT));
            run()
        });
        assert_eq!(serial, parallel);
    }

    /// The plain-loop oracle of layer normalisation.
    fn reference_layer_norm(
        x: &Array2<f64>,
        weight: &[f64],
        bias: &[f64],
        eps: f64,
    ) -> Array2<f64> {
        let mut y = Array2::zeros(x.raw_dim());
        let n = x.ncols() as f64;
        for i in 0..x.nrows() {
            let mean = x.row(i).sum() / n;
            let var = x.row(i).iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            for j in 0..x.ncols() {
                y[(i, j)] = (x[(i, j)] - mean) / (var + eps).sqrt() * weight[j] + bias[j];
            }
        }
        y
    }

    fn layer_norm(weight: &[f64], bias: &[f64]) -> LayerNorm<f64> {
        let mut layer = LayerNorm::new(weight.len(), 1e-5);
        layer.weight_mut().assign(&ArrayView1::from(weight));
        layer.bias_mut().assign(&ArrayView1::from(bias));
        layer
    }

    #[test]
    fn layer_norm_forward_matches_the_plain_loops_and_backward_finite_differences() {
        let weight = random_vec(7, 26);
        let bias = random_vec(7, 27);
        let mut layer = layer_norm(&weight, &bias);
        let x = random(5, 7, 28);
        let expected = reference_layer_norm(&x, &weight, &bias, 1e-5);
        assert_close(layer.forward(x.view()), expected.view(), 1e-13);
        check_gradients(&layer, &x, 1e-8);
    }

    #[test]
    fn parameters_are_visited_weight_then_bias() {
        let mut layer = batch_norm(2, 1, &[1.0, 2.0], &[3.0, 4.0]);
        let mut seen = vec![];
        layer.visit_parameters(&mut |p| seen.push((p.key, p.value.to_vec())));
        let key = |kind| crate::module::ParameterKey { layer: 0, kind };
        assert_eq!(
            seen,
            [
                (key(ParameterKind::Weight), vec![1.0, 2.0]),
                (key(ParameterKind::Bias), vec![3.0, 4.0])
            ]
        );
        let mut layer = layer_norm(&[1.0, 2.0], &[3.0, 4.0]);
        let mut seen = vec![];
        layer.visit_parameters(&mut |p| seen.push((p.key, p.value.to_vec())));
        assert_eq!(
            seen,
            [
                (key(ParameterKind::Weight), vec![1.0, 2.0]),
                (key(ParameterKind::Bias), vec![3.0, 4.0])
            ]
        );
    }

    /// `((i * a) % m - m / 2) / d` for `i` in `0..n`: the inputs of the PyTorch script.
    fn pattern(n: usize, a: usize, m: usize, d: f64) -> Vec<f64> {
        (0..n)
            .map(|i| ((i * a) % m) as f64 - (m / 2) as f64)
            .map(|v| v / d)
            .collect()
    }

    fn matrix(rows: usize, values: Vec<f64>) -> Array2<f64> {
        let cols = values.len() / rows;
        Array2::from_shape_vec((rows, cols), values).unwrap()
    }

    /// Flattened outputs, one `Vec` each.
    type Outputs = Vec<Vec<f64>>;

    /// Runs the PyTorch script's batch-normalisation sequence: a training step on `x1`
    /// (forward, backward), a training forward on `x2`, an evaluation step on `x1`.
    /// Returns `[y, dx, d_weight, d_bias]` of training, the running mean and variance,
    /// and `[y, dx, d_weight, d_bias]` of evaluation, all flattened.
    fn torch_sequence(mut layer: BatchNorm<f64>, batch: usize) -> (Outputs, Outputs, Outputs) {
        let n = batch * layer.channels() * layer.spatial();
        let (x1, x2, dy) = (
            matrix(batch, pattern(n, 37, 23, 7.0)),
            matrix(batch, pattern(n, 29, 19, 5.0)),
            matrix(batch, pattern(n, 17, 13, 5.0)),
        );
        let step = |layer: &mut BatchNorm<f64>| {
            let y = layer.forward(x1.view()).iter().copied().collect();
            let dx = layer.backward(dy.view()).iter().copied().collect();
            vec![y, dx, layer.d_weight().to_vec(), layer.d_bias().to_vec()]
        };
        let train = step(&mut layer);
        layer.forward(x2.view());
        let running = vec![layer.running_mean().to_vec(), layer.running_var().to_vec()];
        assert_eq!(layer.num_batches_tracked(), 2);
        layer.set_training(false);
        (train, running, step(&mut layer))
    }

    fn assert_all_close(actual: &[Vec<f64>], expected: &[&[f64]]) {
        for (index, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert_eq!(a.len(), e.len(), "output {index}");
            for (k, (a, e)) in a.iter().zip(e.iter()).enumerate() {
                assert!((a - e).abs() <= 1e-12, "output {index}[{k}]: {a} vs {e}");
            }
        }
    }

    /// Every output, gradient and running statistic from PyTorch 2.15 (float64, CPU), made by:
    ///
    /// ```python
    /// import torch
    /// torch.set_default_dtype(torch.float64)
    /// def pattern(n, a, m, d):
    ///     return torch.tensor([((i * a) % m - m // 2) / d for i in range(n)])
    /// def show(name, t):
    ///     print(f"let {name} = [" + ", ".join(repr(v) for v in t.detach().flatten().tolist()) + "];")
    /// def batch_norm(bn, shape, weight, bias):
    ///     n = torch.Size(shape).numel()
    ///     with torch.no_grad():
    ///         bn.weight.copy_(torch.tensor(weight)); bn.bias.copy_(torch.tensor(bias))
    ///     x1 = pattern(n, 37, 23, 7).reshape(shape).requires_grad_()
    ///     x2 = pattern(n, 29, 19, 5).reshape(shape)
    ///     dy = pattern(n, 17, 13, 5).reshape(shape)
    ///     y = bn(x1); y.backward(dy)
    ///     show("y_train", y); show("dx_train", x1.grad); show("d_weight_train", bn.weight.grad); show("d_bias_train", bn.bias.grad)
    ///     bn(x2)
    ///     show("running_mean", bn.running_mean); show("running_var", bn.running_var)
    ///     print("// num_batches_tracked", bn.num_batches_tracked.item())
    ///     bn.eval(); x1.grad = None; bn.weight.grad = None; bn.bias.grad = None
    ///     y = bn(x1); y.backward(dy)
    ///     show("y_eval", y); show("dx_eval", x1.grad); show("d_weight_eval", bn.weight.grad); show("d_bias_eval", bn.bias.grad)
    /// print("// BatchNorm2d(2, eps=1e-5, momentum=0.1) on (3, 2, 2, 2)")
    /// batch_norm(torch.nn.BatchNorm2d(2, eps=1e-5, momentum=0.1), (3, 2, 2, 2), [1.5, -0.7], [0.2, -0.4])
    /// print("// BatchNorm1d(3, eps=1e-3, momentum=0.25) on (4, 3)")
    /// batch_norm(torch.nn.BatchNorm1d(3, eps=1e-3, momentum=0.25), (4, 3), [0.8, 1.2, -1.1], [0.0, 0.3, -0.2])
    /// print("// LayerNorm(5, eps=1e-5) on (3, 5)")
    /// ln = torch.nn.LayerNorm(5, eps=1e-5)
    /// with torch.no_grad():
    ///     ln.weight.copy_(torch.tensor([1.5, -0.7, 0.9, 1.1, 0.3])); ln.bias.copy_(torch.tensor([0.2, -0.4, 0.0, 0.1, 0.5]))
    /// x = torch.tensor([((i * i * 7 + 3 * i) % 19 - 9) / 4 for i in range(15)]).reshape(3, 5).requires_grad_()
    /// dy = pattern(15, 17, 13, 5).reshape(3, 5)
    /// y = ln(x); y.backward(dy)
    /// show("y", y); show("dx", x.grad); show("d_weight", ln.weight.grad); show("d_bias", ln.bias.grad)
    /// ```
    #[test]
    fn matches_pytorch() {
        // BatchNorm2d(2, eps=1e-5, momentum=0.1) on (3, 2, 2, 2).
        let mut layer = BatchNorm::new(2, 4, 1e-5, 0.1);
        layer.weight_mut().assign(&ArrayView1::from(&[1.5, -0.7]));
        layer.bias_mut().assign(&ArrayView1::from(&[0.2, -0.4]));
        #[rustfmt::skip]
        let train: [&[f64]; 4] = [
            &[-2.470213588416258, 0.5814590840594654, -1.3803304911034995, 1.6713421813722238, -0.5278446547321654, 0.4583855389159675, -1.075750317870017, -0.08952012422188406, 1.8893188008347757, -0.07247077432818959, -2.034260349491155, 1.0174123229845689, -0.19910125684945443, -1.7332371136354388, -0.747006919987306, 0.23922327366082682, 1.2353889424471205, -0.7264006327158445, 2.325272039759879, 0.36348246459691375, 0.12964214103325655, -1.4044937157527277, -0.41826352210459505, 0.5679666715435377],
            &[-0.7377132917668417, -0.969963709572373, 1.184725029500944, 0.9524746116954128, 0.3446322957187841, -0.2647925196905574, -0.8850261271016989, 0.4999256713107392, -0.9823089551325797, 1.172379783940737, -0.6401059512043865, -0.8723563690099176, -0.5744393759177892, 0.7997036304928492, 0.19027881508350747, -0.41914600032583416, 1.16003453838053, -0.6524511967645936, -0.8847016145701244, 1.2699871245031922, 0.5008655662674174, -0.11936804114372415, -0.7287928565530658, 0.6561589418593723],
            &[5.616530894818415, -0.04696334255467307],
            &[1.4, -1.7999999999999998],
        ];
        #[rustfmt::skip]
        let running: [&[f64]; 2] = [
            &[-0.0055952380952380976, -0.04119047619047619],
            &[1.0506719233147805, 1.0185504019789735],
        ];
        #[rustfmt::skip]
        let eval: [&[f64]; 4] = [
            &[-2.091401340919395, 0.8353486421601941, -1.0461334898195416, 1.880616493260047, -0.32948472069139956, 0.562277593749918, -0.8249082287143537, 0.06685408572696382, 2.089670063480018, 0.2081879315002822, -1.6732942004794538, 1.2534557826001353, -0.03223061587762706, -1.4194164383418988, -0.5276541239005812, 0.36410819054073623, 1.4625093528201059, -0.41897277915962966, 2.507777203919959, 0.6262950719402235, 0.26502348893614547, -1.1221623335281263, -0.2304000190868087, 0.6613622953545087],
            &[-1.7560499898477535, -0.5853499966159178, 0.5853499966159178, 1.7560499898477535, 0.4161557467392815, -0.13871858224642716, -0.6935929112321358, 0.5548743289857087, 0.0, 1.1706999932318356, -1.4633749915397944, -0.2926749983079589, -0.4161557467392815, 0.832311493478563, 0.2774371644928543, -0.2774371644928543, 1.7560499898477535, -0.8780249949238768, 0.2926749983079589, 1.4633749915397944, 0.5548743289857087, -0.0, -0.5548743289857087, 0.6935929112321358],
            &[5.638151560658139, 0.43611423663392035],
            &[1.4, -1.7999999999999998],
        ];
        let (train_run, running_run, eval_run) = torch_sequence(layer, 3);
        assert_all_close(&train_run, &train);
        assert_all_close(&running_run, &running);
        assert_all_close(&eval_run, &eval);

        // BatchNorm1d(3, eps=1e-3, momentum=0.25) on (4, 3).
        let mut layer = BatchNorm::new(3, 1, 1e-3, 0.25);
        layer
            .weight_mut()
            .assign(&ArrayView1::from(&[0.8, 1.2, -1.1]));
        layer
            .bias_mut()
            .assign(&ArrayView1::from(&[0.0, 0.3, -0.2]));
        #[rustfmt::skip]
        let train: [&[f64]; 4] = [
            &[-1.2697926891703564, 1.908000348400113, 0.5791127646952737, 0.874746074761801, 0.836000116133371, 1.1457402299282, 0.4232642297234521, -0.23600011613337094, -1.5457402299282001, -0.028217615314896798, -1.308000348400113, -0.9791127646952736],
            &[-0.13810058678965897, 0.0013754903474019187, -0.1798999211009325, -0.21036675535418434, 0.0004584967824672802, 0.10393205401884906, 0.046033528929886436, -0.0004584967824675144, -0.10393205401884903, 0.302433813213957, -0.0013754903474021269, 0.17989992110093253],
            &[3.717670817737654, 0.8933335268889518, -0.6696506407298219],
            &[1.8, -2.8, 0.4000000000000001],
        ];
        #[rustfmt::skip]
        let running: [&[f64]; 2] = [
            &[-0.09330357142857143, -0.15535714285714286, -0.06339285714285714],
            &[1.2518920068027213, 0.9078741496598639, 1.3032312925170069],
        ];
        #[rustfmt::skip]
        let eval: [&[f64]; 4] = [
            &[-1.0564387681584524, 1.0350029734747301, 0.5645380692047206, 0.8835031558534444, 0.3157340086064927, 1.1149366792058695, 0.47509432974567667, -0.4035349562617448, -1.4994567182995873, 0.06668550363790895, -1.1228039211299823, -0.9490581082984385],
            &[-0.8576585348263122, -0.5034882754077662, -0.38527902700080413, 0.8576585348263122, -0.7552324131116493, -0.19263951350040207, 0.7147154456885936, -1.0069765508155324, -0.0, 0.5717723565508749, -1.2587206885194155, 0.19263951350040207],
            &[3.5704663018378495, 1.401825242987992, -0.653285622893409],
            &[1.8, -2.8, 0.4000000000000001],
        ];
        let (train_run, running_run, eval_run) = torch_sequence(layer, 4);
        assert_all_close(&train_run, &train);
        assert_all_close(&running_run, &running);
        assert_all_close(&eval_run, &eval);

        // LayerNorm(5, eps=1e-5) on (3, 5).
        let mut layer = layer_norm(&[1.5, -0.7, 0.9, 1.1, 0.3], &[0.2, -0.4, 0.0, 0.1, 0.5]);
        let x = (0..15).map(|i| ((i * i * 7 + 3 * i) % 19) as f64 - 9.0);
        let x = matrix(3, x.map(|v| v / 4.0).collect());
        let dy = matrix(3, pattern(15, 17, 13, 5.0));
        let y = layer.forward(x.view()).iter().copied().collect();
        let dx = layer.backward(dy.view()).iter().copied().collect();
        #[rustfmt::skip]
        let expected: [&[f64]; 4] = [
            &[-2.5386054845876087, -0.4, 0.8215816453762826, 1.10415534434879, 0.5, -1.3377251318882872, -0.19496998241489502, -0.4283662867403087, 2.1942351796192874, 0.4670487471738224, -0.2008902720373802, 0.09888567186873978, 1.763917196964473, -0.683963198650877, 0.41982194559252395],
            &[-0.026297467649298634, 0.20740372203276816, -0.3768286871806263, 0.32425431687380163, -0.12853188407664518, 0.38065207232064446, -0.374527306501849, -0.3834399787532913, 0.06925978940527214, 0.30805542352922377, -0.8225683285023997, 0.8235549491045503, 0.06929614049123389, -0.47711126683895005, 0.406828505745566],
            &[2.2531145514432356, -0.15036126173051015, 1.9218622285793818, 1.9506747741814547, 0.019034065006827777],
            &[-2.0, 0.39999999999999997, 0.19999999999999996, 0.0, -0.19999999999999996],
        ];
        assert_all_close(
            &[y, dx, layer.d_weight().to_vec(), layer.d_bias().to_vec()],
            &expected,
        );
    }
}
