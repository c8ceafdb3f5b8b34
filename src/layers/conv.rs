//! 2-D convolution (PyTorch's `nn.Conv2d`, cross-correlation, `groups=1`, `dilation=1`)
//! as im2col + one GEMM per batch.
//!
//! `y[b, o, oh, ow] = bias[o] + sum over (c, i, j) of
//! W[o, c, i, j] x[b, c, oh*sh + i - ph, ow*sw + j - pw]` (zero outside the image).
//!
//! Shapes: `x: (batch, C_in * H * W)` (NCHW rows, see [`ImageShape`]), weight
//! `(C_out, C_in * kh * kw)` (PyTorch's `(C_out, C_in, kh, kw)` flattened row-major),
//! bias `(C_out)`, `y: (batch, C_out * OH * OW)`.
//!
//! The algorithm, with `K = C_in * kh * kw`, `P = OH * OW` and `N = batch * P`:
//! - forward: im2col writes the columns `X: (K, N)`, column `(b, oh, ow)` holding the
//!   window under output `(oh, ow)` of image `b`; one GEMM `Y = W X: (C_out, N)`; a
//!   regrouping copies each `(o, b)` run of `P` values to `y[b, o, ..]`, adding the bias.
//! - backward: `grad_output` is regrouped into `G: (C_out, N)` (the bias gradient is its
//!   row sums); `dW = G X^T` is one GEMM; dL/dx is one GEMM `dX = W^T G: (K, N)` followed
//!   by col2im, which adds each column back onto the pixels it was read from.
//!
//! This layout (`K` rows, batch and position along the columns) makes im2col, col2im and
//! both regroupings copies of contiguous runs (an output row, a channel plane). The
//! transposed one (`X: (N, K)`, `Y = X W^T: (N, C_out)`) was measured on 2 cores for the
//! MNIST CNN's layers: its three GEMMs take about as long, but its copies are per-image
//! transposes and `kw`-long runs, and a prototype took 2-4 times as long per forward +
//! backward. The copies are split across rayon's pool by rows of `X`, images or
//! channels, each written by one task in a fixed order, so the results do not depend on
//! the thread count (the `timing` tests below print the time per layer).

use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rand::Rng;
use rayon::prelude::*;

use crate::buffer::Buffer;
use crate::float::Float;
use crate::gemm::gemm;
use crate::init::{self, Init};
use crate::layers::image::{assert_image_rows, ImageShape, SlidingWindow};
use crate::module::{Module, Parameter, ParameterKind};
use crate::threads::{worth_parallel, CHEAP_ELEMENT};

/// A 2-D convolution layer with its parameters, their gradients and its buffers.
#[derive(Clone, Debug)]
pub struct Conv2d<F> {
    geometry: Geometry,
    out_channels: usize,
    weight: Array2<F>,
    bias: Option<Array1<F>>,
    d_weight: Array2<F>,
    d_bias: Option<Array1<F>>,
    /// im2col of the last input, `X: (K, N)`.
    columns: Buffer<F>,
    /// `W X` in forward, `grad_output` regrouped in backward: `(C_out, N)`.
    by_channel: Buffer<F>,
    /// `W^T G: (K, N)`, the gradient of the columns.
    grad_columns: Buffer<F>,
    output: Buffer<F>,
    grad_input: Buffer<F>,
    batch: usize,
    compute_grad_input: bool,
}

impl<F: Float> Conv2d<F> {
    /// A layer taking `input` images to `out_channels` channels with a `kernel` window
    /// `(kh, kw)`, `stride` and zero `padding` (both `(rows, columns)`); weights drawn by
    /// `init` as a `(C_out, C_in * kh * kw)` matrix (fan-in `C_in * kh * kw`), bias zero
    /// (or none when `bias` is false).
    ///
    /// # Panics
    /// If the window does not fit the padded image or a stride is zero.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(
        input: ImageShape,
        out_channels: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        bias: bool,
        init: Init,
        rng: &mut R,
    ) -> Self {
        let fan_in = input.channels * kernel.0 * kernel.1;
        let weight = init::weights(init, out_channels, fan_in, rng);
        let bias = bias.then(|| Array1::zeros(out_channels));
        Self::from_params(input, weight, bias, kernel, stride, padding)
    }

    /// A layer with the given `weight: (C_out, C_in * kh * kw)` and optional `bias: (C_out)`.
    ///
    /// # Panics
    /// If the shapes do not agree with `input` and `kernel`, or the window does not fit.
    #[track_caller]
    pub fn from_params(
        input: ImageShape,
        weight: Array2<F>,
        bias: Option<Array1<F>>,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Self {
        let geometry = Geometry::fitting("Conv2d::from_params", input, kernel, stride, padding);
        let fan_in = input.channels * kernel.0 * kernel.1;
        assert_eq!(
            weight.ncols(),
            fan_in,
            "Conv2d::from_params: weight has {} columns, C_in * kh * kw = {} * {} * {} = {fan_in}",
            weight.ncols(),
            input.channels,
            kernel.0,
            kernel.1
        );
        let out_channels = weight.nrows();
        if let Some(bias) = &bias {
            assert_eq!(
                bias.len(),
                out_channels,
                "Conv2d::from_params: bias has {} entries, weight has {out_channels} rows",
                bias.len()
            );
        }
        let standard = |bias: Array1<F>| bias.as_standard_layout().into_owned();
        Self {
            geometry,
            out_channels,
            d_weight: Array2::zeros(weight.raw_dim()),
            weight: weight.as_standard_layout().into_owned(),
            d_bias: bias.as_ref().map(|bias| Array1::zeros(bias.len())),
            bias: bias.map(standard),
            columns: Buffer::new(),
            by_channel: Buffer::new(),
            grad_columns: Buffer::new(),
            output: Buffer::new(),
            grad_input: Buffer::new(),
            batch: 0,
            compute_grad_input: true,
        }
    }

    /// The shape of one input image.
    pub fn input_shape(&self) -> ImageShape {
        self.geometry.input
    }

    /// The shape of one output image.
    pub fn output_shape(&self) -> ImageShape {
        let (height, width) = self.geometry.output;
        ImageShape::new(self.out_channels, height, width)
    }

    /// `(kh, kw)`.
    pub fn kernel_size(&self) -> (usize, usize) {
        self.geometry.kernel
    }

    /// `(rows, columns)` step.
    pub fn stride(&self) -> (usize, usize) {
        self.geometry.stride
    }

    /// `(rows, columns)` zero padding on each side.
    pub fn padding(&self) -> (usize, usize) {
        self.geometry.padding
    }

    /// The weight `(C_out, C_in * kh * kw)`.
    pub fn weight(&self) -> ArrayView2<'_, F> {
        self.weight.view()
    }

    /// The weight, to change in place.
    pub fn weight_mut(&mut self) -> ArrayViewMut2<'_, F> {
        self.weight.view_mut()
    }

    /// The bias `(C_out)`, if the layer has one.
    pub fn bias(&self) -> Option<ArrayView1<'_, F>> {
        self.bias.as_ref().map(|bias| bias.view())
    }

    /// The bias, to change in place.
    pub fn bias_mut(&mut self) -> Option<ArrayViewMut1<'_, F>> {
        self.bias.as_mut().map(|bias| bias.view_mut())
    }

    /// dL/dW `(C_out, C_in * kh * kw)` from the last `backward`.
    pub fn d_weight(&self) -> ArrayView2<'_, F> {
        self.d_weight.view()
    }

    /// dL/db `(C_out)` from the last `backward`, if the layer has a bias.
    pub fn d_bias(&self) -> Option<ArrayView1<'_, F>> {
        self.d_bias.as_ref().map(|bias| bias.view())
    }

    /// Whether `backward` computes dL/d(input) (off for a network's first layer, whose
    /// input is data; `backward` then returns an empty `(0, C_in * H * W)` view).
    pub fn set_compute_grad_input(&mut self, enabled: bool) {
        self.compute_grad_input = enabled;
    }

    /// See [`Conv2d::set_compute_grad_input`].
    pub fn computes_grad_input(&self) -> bool {
        self.compute_grad_input
    }
}

impl<F: Float> Module<F> for Conv2d<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // x: (batch, C_in H W) -> X: (K, N); W: (C_out, K) X -> (C_out, N) -> y: (batch, C_out P)
        let geometry = self.geometry;
        assert_image_rows("Conv2d", input.ncols(), geometry.input);
        let batch = input.nrows();
        self.batch = batch;
        let n = batch * geometry.positions();
        // A copy only for an input that is not in standard layout.
        let input = input.as_standard_layout();
        let input = input.as_slice().expect("standard layout");
        let mut columns = self.columns.resize(geometry.fan_in(), n);
        im2col(&geometry, input, batch, slice_mut(&mut columns));
        let by_channel = self.by_channel.resize(self.out_channels, n);
        gemm(
            F::one(),
            self.weight.view(),
            self.columns.view(),
            F::zero(),
            by_channel,
        );
        let mut output = self
            .output
            .resize(batch, self.out_channels * geometry.positions());
        images_from_channels(
            slice(&self.by_channel.view()),
            self.bias
                .as_ref()
                .map(|bias| bias.as_slice().expect("standard layout")),
            self.out_channels,
            geometry.positions(),
            slice_mut(&mut output),
        );
        self.output.view()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // grad_output: (batch, C_out P) -> G: (C_out, N); dW = G X^T: (C_out, K),
        // db = row sums of G, dX = W^T G: (K, N) -> col2im -> grad_input: (batch, C_in H W)
        let geometry = self.geometry;
        let (batch, n) = (self.batch, self.batch * geometry.positions());
        assert_eq!(
            grad_output.dim(),
            (batch, self.out_channels * geometry.positions()),
            "Conv2d::backward: grad_output shape differs from the last forward's output"
        );
        let grad_output = grad_output.as_standard_layout();
        let mut by_channel = self.by_channel.resize(self.out_channels, n);
        channels_from_images(
            grad_output.as_slice().expect("standard layout"),
            self.out_channels,
            geometry.positions(),
            slice_mut(&mut by_channel),
            self.d_bias
                .as_mut()
                .map(|d_bias| d_bias.as_slice_mut().expect("standard layout")),
        );
        let (by_channel, columns) = (self.by_channel.view(), self.columns.view());
        gemm(
            F::one(),
            by_channel,
            columns.t(),
            F::zero(),
            self.d_weight.view_mut(),
        );
        if !self.compute_grad_input {
            self.grad_input.resize(0, geometry.input.len());
            return self.grad_input.view();
        }
        let grad_columns = self.grad_columns.resize(geometry.fan_in(), n);
        gemm(
            F::one(),
            self.weight.t(),
            by_channel,
            F::zero(),
            grad_columns,
        );
        let mut grad_input = self.grad_input.resize(batch, geometry.input.len());
        col2im(
            &geometry,
            slice(&self.grad_columns.view()),
            batch,
            slice_mut(&mut grad_input),
        );
        self.grad_input.view()
    }

    /// Weight (`ParameterKind::Weight`, layer 0) then bias (`ParameterKind::Bias`).
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Parameter<'_, F>)) {
        visitor(Parameter::of_layer(
            ParameterKind::Weight,
            &mut self.weight,
            &self.d_weight,
        ));
        if let (Some(bias), Some(d_bias)) = (&mut self.bias, &self.d_bias) {
            visitor(Parameter::of_layer(ParameterKind::Bias, bias, d_bias));
        }
    }
}

/// A convolution's kernel on its input.
type Geometry = SlidingWindow;

impl Geometry {
    /// `K = C_in * kh * kw`, the length of one column.
    fn fan_in(&self) -> usize {
        self.input.channels * self.kernel.0 * self.kernel.1
    }

    /// The output rows whose kernel row `i` lands inside the image (`0 <= oh*sh + i - ph < H`).
    fn rows(&self, i: usize) -> Range<usize> {
        inside(
            i,
            self.padding.0,
            self.stride.0,
            self.input.height,
            self.output.0,
        )
    }

    /// The output columns whose kernel column `j` lands inside the image.
    fn columns(&self, j: usize) -> Range<usize> {
        inside(
            j,
            self.padding.1,
            self.stride.1,
            self.input.width,
            self.output.1,
        )
    }
}

/// The outputs `o < outputs` with `0 <= o * stride + offset - padding < size`.
fn inside(
    offset: usize,
    padding: usize,
    stride: usize,
    size: usize,
    outputs: usize,
) -> Range<usize> {
    let start = padding.saturating_sub(offset).div_ceil(stride);
    let end = match (size + padding).checked_sub(offset + 1) {
        Some(last) => (last / stride + 1).min(outputs),
        None => 0,
    };
    start..end.max(start)
}

/// `columns[(c, i, j), (b, oh, ow)] = x[b, c, oh*sh + i - ph, ow*sw + j - pw]` (zero in
/// the padding): `input: (batch, C_in H W)` to `columns: (K, batch P)`, both row-major.
/// Rows of `columns` are split across the pool.
fn im2col<F: Float>(geometry: &Geometry, input: &[F], batch: usize, columns: &mut [F]) {
    let g = geometry;
    let (kh, kw) = g.kernel;
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let width = g.input.width;
    let (plane, image) = (g.input.plane(), g.input.len());
    let (ow_count, positions) = (g.output.1, g.positions());
    let fill_row = |k: usize, row: &mut [F]| {
        let (c, i, j) = (k / (kh * kw), k / kw % kh, k % kw);
        let (rows, cols) = (g.rows(i), g.columns(j));
        for b in 0..batch {
            let source = &input[b * image + c * plane..][..plane];
            let target = &mut row[b * positions..][..positions];
            for (oh, target) in target.chunks_exact_mut(ow_count).enumerate() {
                if !rows.contains(&oh) || cols.is_empty() {
                    target.fill(F::zero());
                    continue;
                }
                let ih = oh * sh + i - ph;
                let first = cols.start * sw + j - pw;
                let source = &source[ih * width + first..(ih + 1) * width];
                target[..cols.start].fill(F::zero());
                target[cols.end..].fill(F::zero());
                let target = &mut target[cols.clone()];
                if sw == 1 {
                    target.copy_from_slice(&source[..target.len()]);
                } else {
                    target
                        .iter_mut()
                        .zip(source.iter().step_by(sw))
                        .for_each(|(t, &s)| *t = s);
                }
            }
        }
    };
    debug_assert_eq!(input.len(), batch * image);
    let parallel = worth_parallel(columns.len(), CHEAP_ELEMENT);
    for_each_chunk(columns, batch * positions, parallel, fill_row);
}

/// The adjoint of [`im2col`]: `grad_input[b, c, ih, iw] = sum of grad_columns[(c, i, j),
/// (b, oh, ow)]` over the windows that read `(ih, iw)`, `grad_columns: (K, batch P)` to
/// `grad_input: (batch, C_in H W)`. Images are split across the pool; each sums its
/// columns in the same order whatever the split.
fn col2im<F: Float>(geometry: &Geometry, grad_columns: &[F], batch: usize, grad_input: &mut [F]) {
    let g = geometry;
    let (kh, kw) = g.kernel;
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let width = g.input.width;
    let plane = g.input.plane();
    let (ow_count, positions) = (g.output.1, g.positions());
    let n = batch * positions;
    let add_image = |b: usize, image: &mut [F]| {
        image.fill(F::zero());
        for k in 0..g.fan_in() {
            let (c, i, j) = (k / (kh * kw), k / kw % kh, k % kw);
            let (rows, cols) = (g.rows(i), g.columns(j));
            let source = &grad_columns[k * n + b * positions..][..positions];
            if cols.is_empty() {
                continue;
            }
            let first = cols.start * sw + j - pw;
            for oh in rows {
                let ih = oh * sh + i - ph;
                let row = &mut image[c * plane + ih * width..][..width];
                let target = &mut row[first..];
                let source = &source[oh * ow_count..][cols.clone()];
                if sw == 1 {
                    // Plain slices, so that the loop vectorises.
                    let target = &mut target[..source.len()];
                    target.iter_mut().zip(source).for_each(|(t, &s)| *t += s);
                } else {
                    let target = target.iter_mut().step_by(sw);
                    target.zip(source).for_each(|(t, &s)| *t += s);
                }
            }
        }
    };
    let parallel = worth_parallel(grad_columns.len(), CHEAP_ELEMENT);
    for_each_chunk(grad_input, g.input.len(), parallel, add_image);
}

/// `output[b, o, p] = by_channel[o, b P + p] + bias[o]` (no bias: 0): `by_channel:
/// (C_out, batch P)` to `output: (batch, C_out P)`, split across the pool by images.
fn images_from_channels<F: Float>(
    by_channel: &[F],
    bias: Option<&[F]>,
    channels: usize,
    positions: usize,
    output: &mut [F],
) {
    let n = by_channel.len() / channels.max(1);
    let copy_image = |b: usize, image: &mut [F]| {
        for (o, target) in image.chunks_exact_mut(positions).enumerate() {
            let source = &by_channel[o * n + b * positions..][..positions];
            match bias {
                Some(bias) => target
                    .iter_mut()
                    .zip(source)
                    .for_each(|(t, &s)| *t = s + bias[o]),
                None => target.copy_from_slice(source),
            }
        }
    };
    let parallel = worth_parallel(output.len(), CHEAP_ELEMENT);
    for_each_chunk(output, channels * positions, parallel, copy_image);
}

/// `by_channel[o, b P + p] = grad_output[b, o, p]`: `grad_output: (batch, C_out P)` to
/// `by_channel: (C_out, batch P)`, split across the pool by channels; then `d_bias[o]`
/// (if asked for) is the sum of row `o`.
fn channels_from_images<F: Float>(
    grad_output: &[F],
    channels: usize,
    positions: usize,
    by_channel: &mut [F],
    d_bias: Option<&mut [F]>,
) {
    let n = by_channel.len() / channels.max(1);
    let image = channels * positions;
    let parallel = worth_parallel(by_channel.len(), CHEAP_ELEMENT);
    let copy_channel = |o: usize, row: &mut [F]| {
        for (b, target) in row.chunks_exact_mut(positions).enumerate() {
            target.copy_from_slice(&grad_output[b * image + o * positions..][..positions]);
        }
    };
    for_each_chunk(by_channel, n, parallel, copy_channel);
    if let Some(d_bias) = d_bias {
        let by_channel = &*by_channel;
        for_each_chunk(d_bias, 1, parallel, |o, sum| {
            sum[0] = sum_in_lanes(&by_channel[o * n..][..n]);
        });
    }
}

/// The sum of `values`, added in 8 interleaved lanes (so that the loop vectorises) and
/// then lane after lane: one fixed order.
fn sum_in_lanes<F: Float>(values: &[F]) -> F {
    let mut lanes = [F::zero(); 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        lanes
            .iter_mut()
            .zip(chunk)
            .for_each(|(lane, &v)| *lane += v);
    }
    lanes.iter().chain(rest).fold(F::zero(), |sum, &v| sum + v)
}

/// Runs `work(index, chunk)` on each `chunk_len`-long chunk of `data`, across the pool
/// if `parallel`. Each chunk is one task's, so the results do not depend on the split.
pub(crate) fn for_each_chunk<T: Send>(
    data: &mut [T],
    chunk_len: usize,
    parallel: bool,
    work: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if data.is_empty() || chunk_len == 0 {
        return;
    }
    if parallel {
        data.par_chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(index, chunk)| work(index, chunk));
    } else {
        data.chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(index, chunk)| work(index, chunk));
    }
}

/// A standard-layout view as a slice (buffers are always standard layout).
fn slice<'a, F>(view: &ArrayView2<'a, F>) -> &'a [F] {
    view.to_slice().expect("buffers are in standard layout")
}

/// A standard-layout mutable view as a slice.
fn slice_mut<'a, F>(view: &'a mut ArrayViewMut2<'_, F>) -> &'a mut [F] {
    view.as_slice_mut().expect("buffers are in standard layout")
}

#[cfg(test)]
mod tests {
    use ndarray::{s, Array1, Array2, ArrayView2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::layers::testing::{assert_close, fill};
    use crate::threads::on_pool;

    /// One layer and batch to test: input, `C_out`, kernel, stride, padding, batch, bias.
    type Case = (
        ImageShape,
        usize,
        (usize, usize),
        (usize, usize),
        (usize, usize),
        usize,
        bool,
    );

    /// Square and asymmetric kernels, strides and paddings, one and several input
    /// channels and images, windows lying wholly in the padding, a 1x1 output.
    const CASES: [Case; 6] = [
        (shape(1, 5, 5), 2, (3, 3), (1, 1), (0, 0), 1, true),
        (shape(3, 6, 7), 4, (3, 2), (2, 1), (1, 0), 3, true),
        (shape(2, 7, 6), 3, (2, 3), (2, 3), (0, 2), 2, false),
        (shape(2, 4, 4), 2, (1, 1), (1, 1), (0, 0), 2, true),
        (shape(1, 3, 3), 2, (2, 2), (3, 2), (2, 3), 2, true),
        (shape(2, 3, 4), 3, (5, 4), (1, 1), (1, 0), 2, true),
    ];

    const fn shape(channels: usize, height: usize, width: usize) -> ImageShape {
        ImageShape {
            channels,
            height,
            width,
        }
    }

    fn random(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
        Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-1.0..1.0))
    }

    /// A layer of `case` with random weights and bias, and a random input batch.
    fn layer_and_input(case: Case, seed: u64) -> (Conv2d<f64>, Array2<f64>) {
        let (input, out_channels, kernel, stride, padding, batch, bias) = case;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let fan_in = input.channels * kernel.0 * kernel.1;
        let weight = random(out_channels, fan_in, &mut rng);
        let bias = bias.then(|| random(1, out_channels, &mut rng).row(0).to_owned());
        let layer = Conv2d::from_params(input, weight, bias, kernel, stride, padding);
        (layer, random(batch, input.len(), &mut rng))
    }

    /// The definition, one output value at a time (the oracle).
    fn reference(layer: &Conv2d<f64>, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let (input, output) = (layer.input_shape(), layer.output_shape());
        let ((kh, kw), (sh, sw), (ph, pw)) = (layer.kernel_size(), layer.stride(), layer.padding());
        let weight = layer.weight();
        let mut y = Array2::zeros((x.nrows(), output.len()));
        for b in 0..x.nrows() {
            for o in 0..output.channels {
                for oh in 0..output.height {
                    for ow in 0..output.width {
                        let mut sum = layer.bias().map_or(0.0, |bias| bias[o]);
                        for c in 0..input.channels {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let ih = (oh * sh + i) as isize - ph as isize;
                                    let iw = (ow * sw + j) as isize - pw as isize;
                                    if ih < 0 || iw < 0 {
                                        continue;
                                    }
                                    let (ih, iw) = (ih as usize, iw as usize);
                                    if ih >= input.height || iw >= input.width {
                                        continue;
                                    }
                                    let pixel = x[[b, (c * input.height + ih) * input.width + iw]];
                                    sum += weight[[o, (c * kh + i) * kw + j]] * pixel;
                                }
                            }
                        }
                        y[[b, (o * output.height + oh) * output.width + ow]] = sum;
                    }
                }
            }
        }
        y
    }

    fn max_difference(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> f64 {
        assert_eq!(a.dim(), b.dim());
        a.iter()
            .zip(b)
            .fold(0.0, |max: f64, (a, b)| max.max((a - b).abs()))
    }

    #[test]
    fn output_shapes_follow_pytorch() {
        let layer: Conv2d<f64> = Conv2d::new(
            shape(1, 28, 28),
            32,
            (3, 3),
            (1, 1),
            (1, 1),
            true,
            Init::He,
            &mut ChaCha8Rng::seed_from_u64(0),
        );
        assert_eq!(layer.output_shape(), shape(32, 28, 28));
        assert_eq!(layer.weight().dim(), (32, 9));
        assert_eq!(layer.bias().map(|bias| bias.to_vec()), Some(vec![0.0; 32]));
        let (layer, _) = layer_and_input(CASES[1], 0);
        assert_eq!(layer.output_shape(), shape(4, 3, 6));
        let (layer, _) = layer_and_input(CASES[4], 0);
        assert_eq!(layer.output_shape(), shape(2, 2, 4));
        assert_eq!(
            (layer.kernel_size(), layer.stride(), layer.padding()),
            ((2, 2), (3, 2), (2, 3))
        );
    }

    #[test]
    fn forward_matches_the_definition() {
        for (seed, case) in CASES.into_iter().enumerate() {
            let (mut layer, x) = layer_and_input(case, seed as u64);
            let expected = reference(&layer, x.view());
            let y = layer.forward(x.view()).to_owned();
            let difference = max_difference(y.view(), expected.view());
            assert!(
                difference < 1e-13,
                "case {case:?}: differs by {difference:e}"
            );
        }
    }

    /// `sum(y * r)` for the layer's current parameters.
    fn loss(layer: &mut Conv2d<f64>, x: &Array2<f64>, r: &Array2<f64>) -> f64 {
        (&layer.forward(x.view()) * r).sum()
    }

    /// Central differences of `sum(y * r)` with respect to each entry that `entry`
    /// reaches (the loss is linear in each, so only rounding separates them from the
    /// derivative).
    fn finite_differences(
        count: usize,
        layer: &mut Conv2d<f64>,
        x: &mut Array2<f64>,
        r: &Array2<f64>,
        entry: impl Fn(&mut Conv2d<f64>, &mut Array2<f64>, usize) -> *mut f64,
    ) -> Vec<f64> {
        let h = 1e-3;
        (0..count)
            .map(|index| {
                // SAFETY: a pointer into `layer` or `x`, used before either changes shape.
                let value = unsafe { *entry(layer, x, index) };
                unsafe { *entry(layer, x, index) = value + h };
                let up = loss(layer, x, r);
                unsafe { *entry(layer, x, index) = value - h };
                let down = loss(layer, x, r);
                unsafe { *entry(layer, x, index) = value };
                (up - down) / (2.0 * h)
            })
            .collect()
    }

    #[test]
    fn backward_matches_finite_differences() {
        for (seed, case) in CASES.into_iter().enumerate() {
            let (mut layer, mut x) = layer_and_input(case, seed as u64);
            let mut rng = ChaCha8Rng::seed_from_u64(100 + seed as u64);
            let r = random(x.nrows(), layer.output_shape().len(), &mut rng);
            layer.forward(x.view());
            // Twice: backward overwrites the gradients, never accumulates.
            layer.backward(r.view());
            let grad_input = layer.backward(r.view()).to_owned();
            let d_weight = layer.d_weight().to_owned();
            let d_bias = layer.d_bias().map(|d_bias| d_bias.to_owned());

            let numeric = finite_differences(x.len(), &mut layer, &mut x, &r, |_, x, index| {
                &mut x.as_slice_mut().unwrap()[index]
            });
            assert_close(grad_input.as_slice().unwrap(), &numeric, 1e-9, "grad_input");
            let numeric =
                finite_differences(d_weight.len(), &mut layer, &mut x, &r, |layer, _, index| {
                    &mut layer.weight.as_slice_mut().unwrap()[index]
                });
            assert_close(d_weight.as_slice().unwrap(), &numeric, 1e-9, "d_weight");
            if let Some(d_bias) = d_bias {
                let numeric =
                    finite_differences(d_bias.len(), &mut layer, &mut x, &r, |layer, _, index| {
                        &mut layer.bias.as_mut().unwrap()[index]
                    });
                assert_close(d_bias.as_slice().unwrap(), &numeric, 1e-9, "d_bias");
            }
        }
    }

    /// Forward and backward of `x` with gradient `r`: `(y, grad_input, dW, db)`.
    fn run(
        layer: &mut Conv2d<f64>,
        x: ArrayView2<'_, f64>,
        r: ArrayView2<'_, f64>,
    ) -> (Array2<f64>, Array2<f64>, Array2<f64>, Option<Array1<f64>>) {
        let y = layer.forward(x).to_owned();
        let grad_input = layer.backward(r).to_owned();
        let d_bias = layer.d_bias().map(|d_bias| d_bias.to_owned());
        (y, grad_input, layer.d_weight().to_owned(), d_bias)
    }

    #[test]
    fn a_smaller_batch_reuses_the_buffers_and_equals_a_fresh_layer() {
        let case = (shape(2, 6, 5), 3, (3, 3), (2, 1), (1, 1), 5, true);
        let (mut used, x) = layer_and_input(case, 7);
        let mut fresh = used.clone();
        let r = random(
            5,
            used.output_shape().len(),
            &mut ChaCha8Rng::seed_from_u64(8),
        );
        run(&mut used, x.view(), r.view());
        let pointers = |layer: &Conv2d<f64>| {
            [
                layer.columns.view().as_ptr(),
                layer.by_channel.view().as_ptr(),
                layer.grad_columns.view().as_ptr(),
                layer.output.view().as_ptr(),
                layer.grad_input.view().as_ptr(),
            ]
        };
        let before = pointers(&used);
        let (x, r) = (x.slice(s![3.., ..]), r.slice(s![3.., ..]));
        let second = run(&mut used, x, r);
        assert_eq!(
            pointers(&used),
            before,
            "a smaller batch reallocated a buffer"
        );
        assert_eq!(second, run(&mut fresh, x, r));
    }

    #[test]
    fn without_grad_input_backward_returns_an_empty_view_and_the_same_parameter_gradients() {
        let (mut layer, x) = layer_and_input(CASES[1], 3);
        let r = random(
            3,
            layer.output_shape().len(),
            &mut ChaCha8Rng::seed_from_u64(4),
        );
        let (_, _, d_weight, d_bias) = run(&mut layer, x.view(), r.view());
        assert!(layer.computes_grad_input());
        layer.set_compute_grad_input(false);
        assert!(!layer.computes_grad_input());
        let (_, grad_input, d_weight_off, d_bias_off) = run(&mut layer, x.view(), r.view());
        assert_eq!(grad_input.dim(), (0, shape(3, 6, 7).len()));
        assert_eq!((d_weight_off, d_bias_off), (d_weight, d_bias));
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // Large enough that every copy is split across the pool (see `worth_parallel`).
        let case = (shape(3, 16, 16), 16, (3, 3), (1, 1), (1, 1), 16, true);
        let (layer, x) = layer_and_input(case, 11);
        let r = random(
            16,
            layer.output_shape().len(),
            &mut ChaCha8Rng::seed_from_u64(12),
        );
        let serial = run(&mut layer.clone(), x.view(), r.view());
        for threads in [1, 2, 3] {
            let parallel = on_pool(threads, || run(&mut layer.clone(), x.view(), r.view()));
            assert!(parallel == serial, "{threads} threads changed the results");
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let (mut layer, x) = layer_and_input(CASES[1], 5);
        let r = random(
            3,
            layer.output_shape().len(),
            &mut ChaCha8Rng::seed_from_u64(6),
        );
        let expected = run(&mut layer, x.view(), r.view());
        let single = |a: &Array2<f64>| a.mapv(|v| v as f32);
        let mut layer32 = Conv2d::from_params(
            layer.input_shape(),
            single(&layer.weight.clone()),
            layer.bias.as_ref().map(|bias| bias.mapv(|v| v as f32)),
            layer.kernel_size(),
            layer.stride(),
            layer.padding(),
        );
        let y = layer32.forward(single(&x).view()).mapv(f64::from);
        let grad_input = layer32.backward(single(&r).view()).mapv(f64::from);
        let d_weight = layer32.d_weight().mapv(f64::from);
        assert!(max_difference(y.view(), expected.0.view()) < 1e-5);
        assert!(max_difference(grad_input.view(), expected.1.view()) < 1e-5);
        assert!(max_difference(d_weight.view(), expected.2.view()) < 1e-4);
    }

    #[test]
    fn parameters_are_visited_weight_then_bias() {
        for (case, kinds) in [
            (CASES[1], vec![ParameterKind::Weight, ParameterKind::Bias]),
            (CASES[2], vec![ParameterKind::Weight]),
        ] {
            let (mut layer, x) = layer_and_input(case, 9);
            let r = Array2::ones((x.nrows(), layer.output_shape().len()));
            run(&mut layer, x.view(), r.view());
            let expected_grads: Vec<Vec<f64>> = [
                Some(layer.d_weight().iter().copied().collect()),
                layer.d_bias().map(|d_bias| d_bias.to_vec()),
            ]
            .into_iter()
            .flatten()
            .collect();
            let mut seen = Vec::new();
            layer.visit_parameters(&mut |parameter| {
                assert_eq!(parameter.key.layer, 0);
                parameter.value[0] = 42.0;
                seen.push((parameter.key.kind, parameter.grad.to_vec()));
            });
            let (found_kinds, grads): (Vec<_>, Vec<_>) = seen.into_iter().unzip();
            assert_eq!((found_kinds, grads), (kinds, expected_grads));
            assert_eq!(layer.weight()[[0, 0]], 42.0);
        }
    }

    #[test]
    #[should_panic(expected = "weight has 4 columns, C_in * kh * kw = 1 * 3 * 3 = 9")]
    fn from_params_refuses_a_weight_of_the_wrong_width() {
        Conv2d::from_params(
            shape(1, 5, 5),
            Array2::<f64>::zeros((2, 4)),
            None,
            (3, 3),
            (1, 1),
            (0, 0),
        );
    }

    #[test]
    #[should_panic(expected = "bias has 3 entries, weight has 2 rows")]
    fn from_params_refuses_a_bias_of_the_wrong_length() {
        let bias = Some(Array1::<f64>::zeros(3));
        Conv2d::from_params(
            shape(1, 5, 5),
            Array2::zeros((2, 9)),
            bias,
            (3, 3),
            (1, 1),
            (0, 0),
        );
    }

    #[test]
    #[should_panic(expected = "does not fit a 1x2x5 image")]
    fn from_params_refuses_a_window_that_does_not_fit() {
        Conv2d::from_params(
            shape(1, 2, 5),
            Array2::<f64>::zeros((2, 9)),
            None,
            (3, 3),
            (1, 1),
            (0, 0),
        );
    }

    #[test]
    #[should_panic(expected = "input has 24 values per row, the layer expects 25")]
    fn forward_refuses_an_input_of_the_wrong_width() {
        let (mut layer, _) = layer_and_input(CASES[0], 0);
        layer.forward(Array2::zeros((1, 24)).view());
    }

    #[test]
    fn matches_pytorch() {
        // PyTorch 2.x in float64 (`/tmp/torch_conv_pool.py`):
        //   import torch
        //   torch.set_default_dtype(torch.float64)
        //   def fill(n, a, m, c, d): return torch.tensor([((i * a) % m - c) / d for i in range(n)])
        //   x = fill(2 * 2 * 4 * 5, 7, 11, 5, 7).reshape(2, 2, 4, 5).requires_grad_()
        //   w = fill(2 * 2 * 3 * 2, 5, 13, 6, 9).reshape(2, 2, 3, 2).requires_grad_()
        //   b = fill(2, 3, 5, 2, 6).requires_grad_()
        //   y = torch.nn.functional.conv2d(x, w, b, stride=(2, 1), padding=(1, 1))
        //   r = fill(y.numel(), 3, 7, 3, 5).reshape(y.shape)
        //   (y * r).sum().backward()
        //   for t in (y, x.grad, w.grad, b.grad): print(t.flatten().tolist())
        #[rustfmt::skip]
        const Y: [f64; 48] = [
            -0.5396825396825397, -0.3333333333333333, 0.2857142857142857, -1.1904761904761902,
            0.30158730158730157, -0.06349206349206349, 0.20634920634920634,
            -0.31746031746031744, -0.8888888888888888, 0.6349206349206349, -0.984126984126984,
            -0.2063492063492064, -0.03968253968253965, 0.9285714285714284,
            -0.13492063492063483, 0.37301587301587297, 0.7063492063492064, -0.1349206349206349,
            0.40476190476190477, -0.30952380952380965, 1.2460317460317458,
            -0.16666666666666663, 0.3412698412698412, 0.5317460317460316, -0.09523809523809523,
            0.15873015873015872, -1.1428571428571428, 0.3492063492063492, -0.42857142857142855,
            -0.5396825396825397, -1.2857142857142858, -0.12698412698412692, 0.5238095238095237,
            -1.7936507936507935, 0.6031746031746031, -0.09523809523809523, 0.35714285714285715,
            -1.1031746031746033, 0.9761904761904762, -0.08730158730158727, -0.2777777777777778,
            0.5793650793650793, 0.3412698412698413, 0.9761904761904763, -2.1825396825396823,
            1.2936507936507935, -0.11904761904761907, 0.30952380952380953,
        ];
        #[rustfmt::skip]
        const GRAD_INPUT: [f64; 80] = [
            0.06666666666666665, 0.4222222222222222, -0.6222222222222222, 0.2,
            -0.06666666666666671, -0.5111111111111112, 0.7333333333333333,
            -0.35555555555555557, 0.11111111111111116, 0.26666666666666666,
            -0.1333333333333333, 0.06666666666666665, 0.4222222222222222, -0.6222222222222222,
            0.2, 0.2888888888888889, -0.5333333333333333, 0.3555555555555555,
            0.3111111111111111, -0.3555555555555555, 0.2888888888888889, -0.6444444444444445,
            0.4444444444444444, -0.022222222222222258, -0.17777777777777776,
            -0.1777777777777778, 0.4666666666666667, -1.2222222222222223, 0.6666666666666666,
            0.22222222222222218, -0.022222222222222254, 0.2888888888888889,
            -0.6444444444444445, 0.4444444444444444, -0.022222222222222258,
            -0.17777777777777773, -0.02222222222222226, 0.4444444444444444,
            -0.6444444444444445, 0.2888888888888889, 0.2, -0.06666666666666671,
            0.13333333333333333, -0.1333333333333333, 0.06666666666666665, 0.11111111111111116,
            0.26666666666666666, -0.6666666666666666, 0.4222222222222223, -0.5111111111111112,
            -0.6222222222222222, 0.2, -0.06666666666666671, 0.13333333333333333,
            -0.1333333333333333, 0.3111111111111111, -0.3555555555555555, 0.37777777777777777,
            -0.4444444444444444, 0.2888888888888889, -0.022222222222222258,
            -0.17777777777777776, 0.13333333333333333, -0.022222222222222254,
            0.2888888888888889, 0.6666666666666666, 0.22222222222222218, 0.0888888888888889,
            -0.044444444444444425, -0.1777777777777778, 0.4444444444444444,
            -0.022222222222222258, -0.17777777777777776, 0.13333333333333333,
            -0.022222222222222254, -0.6444444444444445, 0.2888888888888889,
            -0.022222222222222227, 0.13333333333333333, -0.17777777777777773,
        ];
        #[rustfmt::skip]
        const D_WEIGHT: [f64; 24] = [
            0.37142857142857133, -0.48571428571428554, 1.742857142857143, 0.17142857142857132,
            0.6857142857142857, -0.08571428571428585, -1.6571428571428573, 0.8285714285714286,
            0.657142857142857, -1.4857142857142858, 1.8, -2.685714285714286,
            0.4571428571428571, -6.938893903907228e-17, 0.7999999999999999,
            0.028571428571428914, -0.8571428571428569, 0.9714285714285714, -0.8857142857142858,
            0.40000000000000013, 0.7714285714285715, 0.02857142857142847, 1.6285714285714286,
            -1.8571428571428572,
        ];
        const D_BIAS: [f64; 2] = [-0.4, 0.2];
        let input = shape(2, 4, 5);
        let weight = Array2::from_shape_vec((2, 12), fill(24, 5, 13, 6.0, 9.0)).unwrap();
        let bias = Array1::from(fill(2, 3, 5, 2.0, 6.0));
        let mut layer = Conv2d::from_params(input, weight, Some(bias), (3, 2), (2, 1), (1, 1));
        assert_eq!(layer.output_shape(), shape(2, 2, 6));
        let x = Array2::from_shape_vec((2, 40), fill(80, 7, 11, 5.0, 7.0)).unwrap();
        let r = Array2::from_shape_vec((2, 24), fill(48, 3, 7, 3.0, 5.0)).unwrap();
        let (y, grad_input, d_weight, d_bias) = run(&mut layer, x.view(), r.view());
        assert_close(y.as_slice().unwrap(), &Y, 1e-12, "y");
        assert_close(
            grad_input.as_slice().unwrap(),
            &GRAD_INPUT,
            1e-12,
            "grad_input",
        );
        assert_close(d_weight.as_slice().unwrap(), &D_WEIGHT, 1e-12, "d_weight");
        assert_close(
            d_bias.unwrap().as_slice().unwrap(),
            &D_BIAS,
            1e-12,
            "d_bias",
        );
    }

    #[test]
    fn inside_lists_the_outputs_whose_tap_lands_in_the_image() {
        // o * stride + offset - padding in [0, size), for o < outputs.
        let cases: [(usize, usize, usize, usize, usize); 5] = [
            (0, 1, 1, 5, 5),
            (2, 1, 1, 5, 5),
            (0, 5, 4, 1, 3),
            (1, 0, 2, 7, 3),
            (0, 2, 3, 3, 2),
        ];
        for (offset, padding, stride, size, outputs) in cases {
            let expected: Vec<usize> = (0..outputs)
                .filter(|o| {
                    (o * stride + offset)
                        .checked_sub(padding)
                        .is_some_and(|i| i < size)
                })
                .collect();
            let found: Vec<usize> = inside(offset, padding, stride, size, outputs).collect();
            assert_eq!(
                found,
                expected,
                "{:?}",
                (offset, padding, stride, size, outputs)
            );
        }
    }
}

/// Release-mode timing of the MNIST CNN's two convolutions at batch 64 (1x28x28 -> 32
/// channels and 32x14x14 -> 64 channels, 3x3, padding 1; the first without dL/dx, as a
/// network's first layer), best of 20:
/// `cargo test --release --lib layers::conv::timing -- --ignored --nocapture`.
#[cfg(test)]
mod timing {
    use std::time::Instant;

    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::threads::on_pool;

    fn best(reps: usize, mut work: impl FnMut()) -> f64 {
        (0..reps)
            .map(|_| {
                let start = Instant::now();
                work();
                start.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min)
    }

    fn time<F: Float>(threads: usize) {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let layers = [
            (ImageShape::new(1, 28, 28), 32, false),
            (ImageShape::new(32, 14, 14), 64, true),
        ];
        for (input, out_channels, grad_input) in layers {
            let mut layer: Conv2d<F> = Conv2d::new(
                input,
                out_channels,
                (3, 3),
                (1, 1),
                (1, 1),
                true,
                Init::He,
                &mut rng,
            );
            layer.set_compute_grad_input(grad_input);
            let mut random = |cols: usize| {
                Array2::from_shape_simple_fn((64, cols), || {
                    F::from_f64(rng.random_range(-1.0..1.0))
                })
            };
            let (x, grad_output) = (random(input.len()), random(layer.output_shape().len()));
            let (forward, both) = on_pool(threads, || {
                let forward = best(20, || {
                    layer.forward(x.view());
                });
                let both = best(20, || {
                    layer.forward(x.view());
                    layer.backward(grad_output.view());
                });
                (forward, both)
            });
            println!(
                "{} rayon/{threads} {input} -> {out_channels}: forward {forward:.2} ms, \
                 forward + backward {both:.2} ms",
                F::NAME
            );
        }
    }

    #[test]
    #[ignore]
    fn mnist_shapes() {
        for threads in [1, 2] {
            time::<f32>(threads);
            time::<f64>(threads);
        }
    }
}
