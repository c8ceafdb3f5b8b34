//! Normalisation layers: batch normalisation over the batch (PyTorch's `nn.BatchNorm1d`
//! on `(batch, C)` and `nn.BatchNorm2d` on NCHW images, `affine=True`,
//! `track_running_stats=True`) and layer normalisation over each row (`nn.LayerNorm` on
//! the last dimension, `elementwise_affine=True`).
//!
//! Shapes: `x, y: (batch, C * spatial)` where `spatial` is `H * W` for images and 1 for
//! features; `weight`, `bias`, `running_mean`, `running_var`: `(C)`.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1};

use crate::float::Float;
use crate::module::{Module, Parameter};

/// Batch normalisation: in training `y = (x - mean) / sqrt(var + eps) * weight + bias`
/// with the batch's per-channel mean and biased variance, and the running statistics
/// updated as `r = (1 - momentum) r + momentum s` (the unbiased variance for `running_var`);
/// in evaluation the running statistics replace the batch's.
#[derive(Clone, Debug)]
pub struct BatchNorm<F> {
    _todo: std::marker::PhantomData<F>,
}

impl<F: Float> BatchNorm<F> {
    /// A layer over `channels` channels of `spatial` values each (1 for `BatchNorm1d`),
    /// in training mode: weight 1, bias 0, running mean 0, running variance 1.
    pub fn new(channels: usize, spatial: usize, eps: f64, momentum: f64) -> Self {
        let _ = (channels, spatial, eps, momentum);
        todo!()
    }

    /// Channels (`C`).
    pub fn channels(&self) -> usize {
        todo!()
    }

    /// Values per channel in one example (`H * W`, or 1).
    pub fn spatial(&self) -> usize {
        todo!()
    }

    /// `eps`.
    pub fn eps(&self) -> f64 {
        todo!()
    }

    /// `momentum`.
    pub fn momentum(&self) -> f64 {
        todo!()
    }

    /// Whether the layer normalises with the batch's statistics (training) or the
    /// running ones (evaluation).
    pub fn training(&self) -> bool {
        todo!()
    }

    /// Switches between training and evaluation.
    pub fn set_training(&mut self, training: bool) {
        let _ = training;
        todo!()
    }

    /// The scale `(C)`.
    pub fn weight(&self) -> ArrayView1<'_, F> {
        todo!()
    }

    /// The scale, to change in place.
    pub fn weight_mut(&mut self) -> ArrayViewMut1<'_, F> {
        todo!()
    }

    /// The shift `(C)`.
    pub fn bias(&self) -> ArrayView1<'_, F> {
        todo!()
    }

    /// The shift, to change in place.
    pub fn bias_mut(&mut self) -> ArrayViewMut1<'_, F> {
        todo!()
    }

    /// dL/d(weight) `(C)` from the last `backward`.
    pub fn d_weight(&self) -> ArrayView1<'_, F> {
        todo!()
    }

    /// dL/d(bias) `(C)` from the last `backward`.
    pub fn d_bias(&self) -> ArrayView1<'_, F> {
        todo!()
    }

    /// The running mean `(C)`.
    pub fn running_mean(&self) -> ArrayView1<'_, F> {
        todo!()
    }

    /// The running mean, to change in place.
    pub fn running_mean_mut(&mut self) -> ArrayViewMut1<'_, F> {
        todo!()
    }

    /// The running variance `(C)`.
    pub fn running_var(&self) -> ArrayView1<'_, F> {
        todo!()
    }

    /// The running variance, to change in place.
    pub fn running_var_mut(&mut self) -> ArrayViewMut1<'_, F> {
        todo!()
    }

    /// Training batches seen (PyTorch's `num_batches_tracked`).
    pub fn num_batches_tracked(&self) -> u64 {
        todo!()
    }

    /// Sets `num_batches_tracked` (when loading a model).
    pub fn set_num_batches_tracked(&mut self, batches: u64) {
        let _ = batches;
        todo!()
    }
}

impl<F: Float> Module<F> for BatchNorm<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = input;
        todo!()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = grad_output;
        todo!()
    }

    /// Weight (`ParameterKind::Weight`, layer 0) then bias (`ParameterKind::Bias`).
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        let _ = visitor;
        todo!()
    }
}

/// Layer normalisation over each row's `features`: `y = (x - mean) / sqrt(var + eps) *
/// weight + bias` with the row's mean and biased variance; the same in training and
/// evaluation.
#[derive(Clone, Debug)]
pub struct LayerNorm<F> {
    _todo: std::marker::PhantomData<F>,
}

impl<F: Float> LayerNorm<F> {
    /// A layer over rows of `features` values: weight 1, bias 0.
    pub fn new(features: usize, eps: f64) -> Self {
        let _ = (features, eps);
        todo!()
    }

    /// The row width.
    pub fn features(&self) -> usize {
        todo!()
    }

    /// `eps`.
    pub fn eps(&self) -> f64 {
        todo!()
    }

    /// The scale `(features)`.
    pub fn weight(&self) -> ArrayView1<'_, F> {
        todo!()
    }

    /// The scale, to change in place.
    pub fn weight_mut(&mut self) -> ArrayViewMut1<'_, F> {
        todo!()
    }

    /// The shift `(features)`.
    pub fn bias(&self) -> ArrayView1<'_, F> {
        todo!()
    }

    /// The shift, to change in place.
    pub fn bias_mut(&mut self) -> ArrayViewMut1<'_, F> {
        todo!()
    }

    /// dL/d(weight) from the last `backward`.
    pub fn d_weight(&self) -> ArrayView1<'_, F> {
        todo!()
    }

    /// dL/d(bias) from the last `backward`.
    pub fn d_bias(&self) -> ArrayView1<'_, F> {
        todo!()
    }
}

impl<F: Float> Module<F> for LayerNorm<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = input;
        todo!()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        let _ = grad_output;
        todo!()
    }

    /// Weight (`ParameterKind::Weight`, layer 0) then bias (`ParameterKind::Bias`).
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        let _ = visitor;
        todo!()
    }
}
