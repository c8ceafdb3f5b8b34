//! 2-D max and average pooling (PyTorch's `nn.MaxPool2d` and `nn.AvgPool2d` with
//! `ceil_mode=False`, `dilation=1`, and for averages `count_include_pad=True`).
//!
//! Shapes: `x: (batch, C * H * W)` (NCHW rows, see [`ImageShape`]), `y: (batch, C * OH * OW)`.
//!
//! Window `(oh, ow)` covers rows `oh*sh - ph ..` and columns `ow*sw - pw ..`, `kh x kw` of
//! them. Max: `y` is its largest element, scanned row by row as PyTorch does (`x > max
//! || isnan(x)` replaces the maximum, so the first of equal values wins, and the last
//! NaN); padding is `-inf`, so it never wins, and the winner's index is kept for
//! `backward`, which routes each `dL/dy` to it. Average: `y` is the window's sum over
//! `kh * kw` (the padding counts as zeros), and `backward` spreads `dL/dy / (kh * kw)`
//! over the window. Each image channel (plane) is one task on rayon's pool, written in
//! a fixed order, so the results do not depend on the thread count.

use std::ops::Range;

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::buffer::Buffer;
use crate::float::Float;
use crate::layers::conv::for_each_chunk;
use crate::layers::image::{assert_image_rows, ImageShape, SlidingWindow};
use crate::module::Module;
use crate::threads::{worth_parallel, CHEAP_ELEMENT};

/// Which value a window gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest (NaN wins, as in PyTorch); the gradient goes to that element.
    Max,
    /// The mean over the whole window, padding included.
    Average,
}

/// A pooling layer.
#[derive(Clone, Debug)]
pub struct Pool2d<F> {
    kind: PoolKind,
    windows: Windows,
    output: Buffer<F>,
    /// Max only: for each output value, the index in its input plane of the element
    /// that gave it, `(batch * C * OH * OW)` (grows only, as the buffers do).
    winners: Vec<usize>,
    grad_input: Buffer<F>,
    batch: usize,
}

/// A pooling's window on one plane.
type Windows = SlidingWindow;

impl<F: Float> Pool2d<F> {
    /// A layer pooling `input` images with a `kernel` window `(kh, kw)`, `stride` and
    /// `padding` (PyTorch: at most half the kernel; `-inf` for max, zeros for average).
    ///
    /// # Panics
    /// If the window does not fit the padded image or a stride is zero.
    #[track_caller]
    pub fn new(
        kind: PoolKind,
        input: ImageShape,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Self {
        let windows = Windows::fitting("Pool2d::new", input, kernel, stride, padding);
        debug_assert!(
            2 * padding.0 <= kernel.0 && 2 * padding.1 <= kernel.1,
            "Pool2d::new: padding {padding:?} exceeds half the kernel {kernel:?}"
        );
        Self {
            kind,
            windows,
            output: Buffer::new(),
            winners: Vec::new(),
            grad_input: Buffer::new(),
            batch: 0,
        }
    }

    /// Max or average.
    pub fn kind(&self) -> PoolKind {
        self.kind
    }

    /// The shape of one input image.
    pub fn input_shape(&self) -> ImageShape {
        self.windows.input
    }

    /// The shape of one output image.
    pub fn output_shape(&self) -> ImageShape {
        let (height, width) = self.windows.output;
        ImageShape::new(self.windows.input.channels, height, width)
    }

    /// `(kh, kw)`.
    pub fn kernel_size(&self) -> (usize, usize) {
        self.windows.kernel
    }

    /// `(rows, columns)` step.
    pub fn stride(&self) -> (usize, usize) {
        self.windows.stride
    }

    /// `(rows, columns)` padding on each side.
    pub fn padding(&self) -> (usize, usize) {
        self.windows.padding
    }
}

impl Windows {
    /// The input rows and columns under the window of output `position` (`oh * OW +
    /// ow`), padding left out.
    fn window(&self, position: usize) -> (Range<usize>, Range<usize>) {
        let (oh, ow) = (position / self.output.1, position % self.output.1);
        let (rows, columns) = (self.kernel.0, self.kernel.1);
        (
            span(oh * self.stride.0, rows, self.padding.0, self.input.height),
            span(
                ow * self.stride.1,
                columns,
                self.padding.1,
                self.input.width,
            ),
        )
    }

    /// One plane's maxima: `output[oh, ow]` and the index in `input: (H, W)` of the
    /// element that gave it into `winners[oh, ow]`.
    fn max_plane<F: Float>(&self, input: &[F], output: &mut [F], winners: &mut [usize]) {
        if self.kernel == (2, 2) && self.stride == (2, 2) && self.padding == (0, 0) {
            return self.max_plane_2x2(input, output, winners);
        }
        let (width, columns_out) = (self.input.width, self.output.1);
        let rows_out = output
            .chunks_mut(columns_out)
            .zip(winners.chunks_mut(columns_out));
        for (oh, (output, winners)) in rows_out.enumerate() {
            let rows = span(
                oh * self.stride.0,
                self.kernel.0,
                self.padding.0,
                self.input.height,
            );
            for (ow, (value, winner)) in output.iter_mut().zip(winners.iter_mut()).enumerate() {
                let columns = span(ow * self.stride.1, self.kernel.1, self.padding.1, width);
                // Padding is -inf: the first element inside stands for an all -inf window.
                let (mut max, mut index) = (F::neg_infinity(), rows.start * width + columns.start);
                for row in rows.clone() {
                    let start = row * width + columns.start;
                    for (offset, &x) in input[start..row * width + columns.end].iter().enumerate() {
                        // Selects, not a branch: which element wins is data, and a
                        // mispredicted branch per element cost more than the pooling.
                        let take = x > max || x.is_nan();
                        max = if take { x } else { max };
                        index = if take { start + offset } else { index };
                    }
                }
                (*value, *winner) = (max, index);
            }
        }
    }

    /// [`Windows::max_plane`] for the common 2x2 window at stride 2 without padding,
    /// unrolled: each window is four independent loads and the same scan order (row by
    /// row; a larger value or a NaN replaces the maximum).
    fn max_plane_2x2<F: Float>(&self, input: &[F], output: &mut [F], winners: &mut [usize]) {
        let (width, columns_out) = (self.input.width, self.output.1);
        let rows_out = output
            .chunks_mut(columns_out)
            .zip(winners.chunks_mut(columns_out));
        for (oh, (output, winners)) in rows_out.enumerate() {
            let top = 2 * oh * width;
            let (upper, lower) = (
                &input[top..top + width],
                &input[top + width..top + 2 * width],
            );
            for (ow, (value, winner)) in output.iter_mut().zip(winners.iter_mut()).enumerate() {
                let column = 2 * ow;
                let mut max = upper[column];
                let mut index = top + column;
                for (x, at) in [
                    (upper[column + 1], top + column + 1),
                    (lower[column], top + width + column),
                    (lower[column + 1], top + width + column + 1),
                ] {
                    let take = x > max || x.is_nan();
                    max = if take { x } else { max };
                    index = if take { at } else { index };
                }
                (*value, *winner) = (max, index);
            }
        }
    }

    /// One plane's averages: `output[oh, ow]` = the window's sum over `kh * kw`.
    fn average_plane<F: Float>(&self, input: &[F], output: &mut [F]) {
        let (width, columns_out) = (self.input.width, self.output.1);
        let divisor = F::from_f64((self.kernel.0 * self.kernel.1) as f64);
        for (oh, output) in output.chunks_mut(columns_out).enumerate() {
            let rows = span(
                oh * self.stride.0,
                self.kernel.0,
                self.padding.0,
                self.input.height,
            );
            for (ow, value) in output.iter_mut().enumerate() {
                let columns = span(ow * self.stride.1, self.kernel.1, self.padding.1, width);
                let mut sum = F::zero();
                for row in rows.clone() {
                    sum = input[row * width..][columns.clone()]
                        .iter()
                        .fold(sum, |sum, &x| sum + x);
                }
                *value = sum / divisor;
            }
        }
    }

    /// One plane of dL/dx: `grad_input: (H, W)` from `grad_output: (OH, OW)` and, for
    /// max, the plane's `winners`.
    fn backward_plane<F: Float>(
        &self,
        kind: PoolKind,
        grad_output: &[F],
        winners: &[usize],
        grad_input: &mut [F],
    ) {
        grad_input.fill(F::zero());
        match kind {
            PoolKind::Max => {
                for (&g, &winner) in grad_output.iter().zip(winners) {
                    grad_input[winner] += g;
                }
            }
            PoolKind::Average => {
                let width = self.input.width;
                let divisor = F::from_f64((self.kernel.0 * self.kernel.1) as f64);
                for (position, &g) in grad_output.iter().enumerate() {
                    let (rows, columns) = self.window(position);
                    let share = g / divisor;
                    for row in rows {
                        grad_input[row * width..][columns.clone()]
                            .iter_mut()
                            .for_each(|x| *x += share);
                    }
                }
            }
        }
    }
}

/// The indices `[start - padding, start - padding + kernel)` that lie in `[0, size)`.
fn span(start: usize, kernel: usize, padding: usize, size: usize) -> Range<usize> {
    start.saturating_sub(padding)..(start + kernel).saturating_sub(padding).min(size)
}

impl<F: Float> Module<F> for Pool2d<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // x: (batch, C H W) -> y: (batch, C OH OW), one plane (H, W) -> (OH, OW) per task
        let windows = self.windows;
        assert_image_rows("Pool2d", input.ncols(), windows.input);
        self.batch = input.nrows();
        // A copy only for an input that is not in standard layout.
        let input = input.as_standard_layout();
        let input = input.as_slice().expect("standard layout");
        let (plane, positions) = (windows.input.plane(), windows.positions());
        let mut output = self
            .output
            .resize(self.batch, windows.input.channels * positions);
        let output = output
            .as_slice_mut()
            .expect("buffers are in standard layout");
        let parallel = worth_parallel(input.len(), CHEAP_ELEMENT);
        match self.kind {
            PoolKind::Max => {
                if self.winners.len() < output.len() {
                    self.winners.resize(output.len(), 0);
                }
                let winners = &mut self.winners[..output.len()];
                let work = |(q, (output, winners)): (usize, (&mut [F], &mut [usize]))| {
                    windows.max_plane(&input[q * plane..][..plane], output, winners);
                };
                if parallel {
                    output
                        .par_chunks_mut(positions)
                        .zip(winners.par_chunks_mut(positions))
                        .enumerate()
                        .for_each(work);
                } else {
                    output
                        .chunks_mut(positions)
                        .zip(winners.chunks_mut(positions))
                        .enumerate()
                        .for_each(work);
                }
            }
            PoolKind::Average => for_each_chunk(output, positions, parallel, |q, output| {
                windows.average_plane(&input[q * plane..][..plane], output);
            }),
        }
        self.output.view()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // grad_output: (batch, C OH OW) -> grad_input: (batch, C H W), one plane per task
        let (windows, kind) = (self.windows, self.kind);
        assert_eq!(
            grad_output.dim(),
            (self.batch, windows.input.channels * windows.positions()),
            "Pool2d::backward: grad_output shape differs from the last forward's output"
        );
        let grad_output = grad_output.as_standard_layout();
        let grad_output = grad_output.as_slice().expect("standard layout");
        let (plane, positions) = (windows.input.plane(), windows.positions());
        let mut grad_input = self.grad_input.resize(self.batch, windows.input.len());
        let grad_input = grad_input
            .as_slice_mut()
            .expect("buffers are in standard layout");
        let parallel = worth_parallel(grad_input.len(), CHEAP_ELEMENT);
        let winners = &self.winners;
        for_each_chunk(grad_input, plane, parallel, |q, grad_input| {
            let outputs = q * positions..(q + 1) * positions;
            // Average pooling keeps no winners.
            let winners = winners.get(outputs.clone()).unwrap_or(&[]);
            windows.backward_plane(kind, &grad_output[outputs], winners, grad_input);
        });
        self.grad_input.view()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{s, Array2, ArrayView2};

    use super::*;
    use crate::layers::testing::{self as testing, assert_close, fill};
    use crate::threads::on_pool;

    /// Seeded inputs in this file's range.
    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        testing::random(rows, cols, -1.0..1.0, seed)
    }

    /// One layer and batch to test: input, kernel, stride, padding, batch.
    type Case = (
        ImageShape,
        (usize, usize),
        (usize, usize),
        (usize, usize),
        usize,
    );

    /// Square and asymmetric windows, strides and paddings (up to half the kernel),
    /// overlapping and disjoint windows, several channels and images.
    const CASES: [Case; 5] = [
        (shape(1, 4, 4), (2, 2), (2, 2), (0, 0), 1),
        (shape(3, 7, 6), (3, 3), (2, 2), (1, 1), 2),
        (shape(2, 5, 8), (3, 2), (1, 2), (1, 1), 3),
        (shape(2, 6, 5), (2, 4), (3, 1), (1, 2), 2),
        (shape(1, 3, 3), (3, 3), (1, 1), (1, 1), 2),
    ];

    const fn shape(channels: usize, height: usize, width: usize) -> ImageShape {
        ImageShape {
            channels,
            height,
            width,
        }
    }

    fn layer(kind: PoolKind, case: Case) -> Pool2d<f64> {
        let (input, kernel, stride, padding, _) = case;
        Pool2d::new(kind, input, kernel, stride, padding)
    }

    /// The definition, one output value at a time over the padded window (the oracle):
    /// padding is -inf for max (NaN compared as PyTorch does), 0 for average.
    fn reference(layer: &Pool2d<f64>, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let Windows {
            input,
            kernel: (kh, kw),
            stride: (sh, sw),
            padding: (ph, pw),
            output: (oh_count, ow_count),
        } = layer.windows;
        let mut y = Array2::zeros((x.nrows(), input.channels * oh_count * ow_count));
        for b in 0..x.nrows() {
            for c in 0..input.channels {
                for oh in 0..oh_count {
                    for ow in 0..ow_count {
                        let mut values = Vec::new();
                        for i in 0..kh {
                            for j in 0..kw {
                                let ih = (oh * sh + i) as isize - ph as isize;
                                let iw = (ow * sw + j) as isize - pw as isize;
                                let inside = (0..input.height as isize).contains(&ih)
                                    && (0..input.width as isize).contains(&iw);
                                values.push(match (inside, layer.kind) {
                                    (true, _) => {
                                        let (ih, iw) = (ih as usize, iw as usize);
                                        x[[b, (c * input.height + ih) * input.width + iw]]
                                    }
                                    (false, PoolKind::Max) => f64::NEG_INFINITY,
                                    (false, PoolKind::Average) => 0.0,
                                });
                            }
                        }
                        let value = match layer.kind {
                            PoolKind::Max => {
                                values.into_iter().fold(f64::NEG_INFINITY, |max, v| {
                                    if v > max || v.is_nan() {
                                        v
                                    } else {
                                        max
                                    }
                                })
                            }
                            PoolKind::Average => values.iter().sum::<f64>() / (kh * kw) as f64,
                        };
                        y[[b, (c * oh_count + oh) * ow_count + ow]] = value;
                    }
                }
            }
        }
        y
    }

    /// Forward and backward of `x` with gradient `r`: `(y, grad_input)`.
    fn run(
        layer: &mut Pool2d<f64>,
        x: ArrayView2<'_, f64>,
        r: ArrayView2<'_, f64>,
    ) -> (Array2<f64>, Array2<f64>) {
        let y = layer.forward(x).to_owned();
        (y, layer.backward(r).to_owned())
    }

    const KINDS: [PoolKind; 2] = [PoolKind::Max, PoolKind::Average];

    #[test]
    fn output_shapes_follow_pytorch() {
        let layer: Pool2d<f32> =
            Pool2d::new(PoolKind::Max, shape(32, 28, 28), (2, 2), (2, 2), (0, 0));
        assert_eq!(layer.output_shape(), shape(32, 14, 14));
        assert_eq!(
            (layer.kind(), layer.input_shape()),
            (PoolKind::Max, shape(32, 28, 28))
        );
        let layer: Pool2d<f32> =
            Pool2d::new(PoolKind::Average, shape(2, 5, 8), (3, 2), (1, 2), (1, 1));
        assert_eq!(layer.output_shape(), shape(2, 5, 5));
    }

    #[test]
    #[should_panic(expected = "does not fit a 1x2x2 image")]
    fn a_window_larger_than_the_image_is_refused() {
        Pool2d::<f64>::new(PoolKind::Max, shape(1, 2, 2), (3, 3), (1, 1), (0, 0));
    }

    #[test]
    fn forward_matches_the_definition() {
        for kind in KINDS {
            for (seed, case) in CASES.into_iter().enumerate() {
                let mut layer = layer(kind, case);
                let x = random(case.4, case.0.len(), seed as u64);
                let expected = reference(&layer, x.view());
                let y = layer.forward(x.view());
                assert_close(
                    y.as_slice().unwrap(),
                    expected.as_slice().unwrap(),
                    1e-15,
                    &format!("{kind:?} {case:?}"),
                );
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        // Max pooling is linear near random (distinct) values, average pooling everywhere.
        let h = 1e-6;
        for kind in KINDS {
            for (seed, case) in CASES.into_iter().enumerate() {
                let mut layer = layer(kind, case);
                let mut x = random(case.4, case.0.len(), seed as u64);
                let r = random(case.4, layer.output_shape().len(), 50 + seed as u64);
                layer.forward(x.view());
                // Twice: the gradient is written afresh, never accumulated.
                layer.backward(r.view());
                let grad_input = layer.backward(r.view()).to_owned();
                let mut loss = |x: &Array2<f64>| (&layer.forward(x.view()) * &r).sum();
                for index in 0..x.len() {
                    let value = x.as_slice().unwrap()[index];
                    x.as_slice_mut().unwrap()[index] = value + h;
                    let up = loss(&x);
                    x.as_slice_mut().unwrap()[index] = value - h;
                    let down = loss(&x);
                    x.as_slice_mut().unwrap()[index] = value;
                    let numeric = (up - down) / (2.0 * h);
                    let found = grad_input.as_slice().unwrap()[index];
                    assert!(
                        (found - numeric).abs() < 1e-8,
                        "{kind:?} {case:?} [{index}]: {found} against {numeric}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_smaller_batch_reuses_the_buffers_and_equals_a_fresh_layer() {
        for kind in KINDS {
            let case = CASES[2];
            let mut used = layer(kind, case);
            let x = random(5, case.0.len(), 1);
            let r = random(5, used.output_shape().len(), 2);
            run(&mut used, x.view(), r.view());
            let pointers = |layer: &Pool2d<f64>| {
                (
                    layer.output.view().as_ptr(),
                    layer.grad_input.view().as_ptr(),
                    layer.winners.as_ptr(),
                )
            };
            let before = pointers(&used);
            let (x, r) = (x.slice(s![3.., ..]), r.slice(s![3.., ..]));
            let second = run(&mut used, x, r);
            assert_eq!(
                pointers(&used),
                before,
                "{kind:?}: a smaller batch reallocated"
            );
            assert_eq!(second, run(&mut layer(kind, case), x, r), "{kind:?}");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // Large enough that the planes are split across the pool (see `worth_parallel`).
        for kind in KINDS {
            let case = (shape(16, 16, 16), (3, 3), (2, 2), (1, 1), 24);
            let x = random(24, case.0.len(), 3);
            let r = random(24, layer(kind, case).output_shape().len(), 4);
            let serial = run(&mut layer(kind, case), x.view(), r.view());
            for threads in [1, 2, 3] {
                let parallel = on_pool(threads, || run(&mut layer(kind, case), x.view(), r.view()));
                assert!(
                    parallel == serial,
                    "{kind:?}: {threads} threads changed the results"
                );
            }
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        for kind in KINDS {
            let case = CASES[1];
            let x = random(2, case.0.len(), 5);
            let r = random(2, layer(kind, case).output_shape().len(), 6);
            let expected = run(&mut layer(kind, case), x.view(), r.view());
            let (input, kernel, stride, padding, _) = case;
            let mut single = Pool2d::<f32>::new(kind, input, kernel, stride, padding);
            let y = single.forward(x.mapv(|v| v as f32).view()).mapv(f64::from);
            let grad_input = single.backward(r.mapv(|v| v as f32).view()).mapv(f64::from);
            assert_close(
                y.as_slice().unwrap(),
                expected.0.as_slice().unwrap(),
                1e-6,
                "y",
            );
            assert_close(
                grad_input.as_slice().unwrap(),
                expected.1.as_slice().unwrap(),
                1e-6,
                "grad_input",
            );
        }
    }

    #[test]
    fn matches_pytorch() {
        // PyTorch 2.x in float64 (`/tmp/torch_conv_pool.py`); the values repeat, so
        // windows hold ties:
        //   import torch
        //   torch.set_default_dtype(torch.float64)
        //   def fill(n, a, m, c, d): return torch.tensor([((i * a) % m - c) / d for i in range(n)])
        //   for pool in (torch.nn.functional.max_pool2d, torch.nn.functional.avg_pool2d):
        //       x = fill(2 * 2 * 5 * 4, 7, 11, 5, 7).reshape(2, 2, 5, 4).requires_grad_()
        //       y = pool(x, (3, 2), (2, 1), (1, 1))
        //       r = fill(y.numel(), 3, 7, 3, 5).reshape(y.shape)
        //       (y * r).sum().backward()
        //       for t in (y, x.grad): print(t.flatten().tolist())
        #[rustfmt::skip]
        const MAX_Y: [f64; 60] = [
            0.14285714285714285, 0.2857142857142857, 0.5714285714285714, 0.7142857142857143,
            0.7142857142857143, 0.2857142857142857, 0.42857142857142855, 0.7142857142857143,
            0.7142857142857143, 0.14285714285714285, 0.2857142857142857, 0.5714285714285714,
            0.7142857142857143, 0.7142857142857143, 0.14285714285714285, 0.42857142857142855,
            0.7142857142857143, 0.7142857142857143, 0.2857142857142857, 0.2857142857142857,
            0.5714285714285714, 0.7142857142857143, 0.7142857142857143, 0.42857142857142855,
            0.42857142857142855, 0.7142857142857143, 0.7142857142857143, 0.2857142857142857,
            0.5714285714285714, 0.5714285714285714, 0.0, 0.2857142857142857,
            0.42857142857142855, 0.7142857142857143, 0.7142857142857143, 0.14285714285714285,
            0.42857142857142855, 0.5714285714285714, 0.7142857142857143, 0.7142857142857143,
            0.2857142857142857, 0.42857142857142855, 0.7142857142857143, 0.7142857142857143,
            0.14285714285714285, 0.42857142857142855, 0.5714285714285714, 0.5714285714285714,
            0.2857142857142857, 0.2857142857142857, 0.5714285714285714, 0.7142857142857143,
            0.7142857142857143, 0.42857142857142855, 0.42857142857142855, 0.5714285714285714,
            0.5714285714285714, 0.2857142857142857, 0.42857142857142855, 0.42857142857142855,
        ];
        #[rustfmt::skip]
        const MAX_GRAD_INPUT: [f64; 80] = [
            0.0, 0.0, 0.0, 0.2, -0.6, 0.0, 0.6, 0.0, 0.0, 0.2, 0.0, 0.0, -0.6000000000000001,
            0.0, -0.8, 0.0, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.2, 0.0, 0.0, 0.2,
            0.0, 0.0, 0.39999999999999997, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0, -0.6, 0.6, 0.0,
            0.4, 0.0, 0.0, -0.2, 0.0, 0.0, -0.6, 0.0, 0.6, 0.0, 0.0, 0.2, 0.0, 0.0, -0.4, 0.0,
            -0.6, 0.6, 0.0, 0.0, 0.0, 0.0, -0.2, 0.0, 0.0, -0.39999999999999997, 0.0,
            0.39999999999999997, 0.0, 0.0, -0.39999999999999997, 0.0, 0.0, 0.39999999999999997,
            0.0, 0.0, 0.0, 0.0,
        ];
        #[rustfmt::skip]
        const AVERAGE_Y: [f64; 60] = [
            -0.09523809523809523, -0.11904761904761905, 0.023809523809523808,
            0.16666666666666666, 0.11904761904761905, -0.023809523809523808,
            -0.07142857142857142, 0.14285714285714288, 0.09523809523809523,
            -0.09523809523809523, -0.023809523809523808, 0.023809523809523808,
            0.16666666666666666, 0.04761904761904764, -0.07142857142857142,
            0.023809523809523808, 0.11904761904761905, -9.25185853854297e-18,
            -0.11904761904761905, -0.023809523809523808, 0.023809523809523808,
            0.02380952380952382, -0.023809523809523798, -0.07142857142857142,
            -0.047619047619047616, 0.09523809523809523, -9.25185853854297e-18,
            -0.11904761904761905, 0.023809523809523808, 0.047619047619047616,
            -0.11904761904761905, -0.16666666666666666, -0.023809523809523808,
            0.11904761904761905, 0.09523809523809523, -0.19047619047619047,
            -0.14285714285714282, 0.07142857142857142, 0.02380952380952382, 0.0,
            -0.047619047619047616, -0.023809523809523808, 0.11904761904761905,
            -9.25185853854297e-18, -0.09523809523809523, 0.0, 0.07142857142857142,
            -0.04761904761904762, -0.16666666666666666, -0.047619047619047616,
            0.11904761904761903, 0.21428571428571427, -0.09523809523809523,
            -0.14285714285714282, 0.047619047619047616, 0.07142857142857142,
            -0.04761904761904762, -0.16666666666666666, -0.023809523809523808,
            0.023809523809523808,
        ];
        #[rustfmt::skip]
        const AVERAGE_GRAD_INPUT: [f64; 80] = [
            -0.09999999999999999, 0.09999999999999999, 0.06666666666666665,
            0.03333333333333333, -0.13333333333333333, 0.03333333333333334,
            -0.03333333333333334, 0.13333333333333333, -0.03333333333333333,
            -0.06666666666666665, -0.09999999999999999, 0.09999999999999999, 0.0,
            -0.06666666666666665, -0.13333333333333333, 0.03333333333333334,
            0.03333333333333333, 0.0, -0.03333333333333333, -0.06666666666666665,
            0.09999999999999999, 0.06666666666666665, 0.03333333333333333, 0.0,
            0.03333333333333334, -0.03333333333333334, 0.13333333333333333,
            0.06666666666666665, -0.06666666666666665, -0.09999999999999999,
            0.09999999999999999, 0.06666666666666665, -0.06666666666666665,
            -0.13333333333333333, 0.03333333333333334, -0.03333333333333334, 0.0,
            -0.03333333333333333, -0.06666666666666665, -0.09999999999999999,
            0.06666666666666665, 0.03333333333333333, 0.0, -0.03333333333333333,
            -0.03333333333333334, 0.13333333333333333, 0.06666666666666665, 0.0,
            -0.09999999999999999, 0.09999999999999999, 0.06666666666666665,
            0.03333333333333333, -0.13333333333333333, 0.03333333333333334,
            -0.03333333333333334, 0.13333333333333333, -0.03333333333333333,
            -0.06666666666666665, -0.09999999999999999, 0.09999999999999999,
            0.03333333333333333, 0.0, -0.03333333333333333, -0.06666666666666665,
            0.13333333333333333, 0.06666666666666665, 0.0, -0.06666666666666665,
            0.09999999999999999, 0.06666666666666665, 0.03333333333333333, 0.0,
            0.03333333333333334, -0.03333333333333334, 0.13333333333333333,
            0.06666666666666665, -0.06666666666666665, -0.09999999999999999,
            0.09999999999999999, 0.06666666666666665,
        ];
        let x = Array2::from_shape_vec((2, 40), fill(80, 7, 11, 5.0, 7.0)).unwrap();
        let r = Array2::from_shape_vec((2, 30), fill(60, 3, 7, 3.0, 5.0)).unwrap();
        for (kind, y_expected, grad_expected) in [
            (PoolKind::Max, &MAX_Y, &MAX_GRAD_INPUT),
            (PoolKind::Average, &AVERAGE_Y, &AVERAGE_GRAD_INPUT),
        ] {
            let mut layer = Pool2d::new(kind, shape(2, 5, 4), (3, 2), (2, 1), (1, 1));
            let (y, grad_input) = run(&mut layer, x.view(), r.view());
            assert_close(
                y.as_slice().unwrap(),
                y_expected,
                1e-15,
                &format!("{kind:?} y"),
            );
            assert_close(
                grad_input.as_slice().unwrap(),
                grad_expected,
                1e-15,
                &format!("{kind:?} grad_input"),
            );
        }
    }

    #[test]
    fn max_pool_treats_nan_ties_and_infinities_as_pytorch_does() {
        // PyTorch 2.x (`/tmp/torch_conv_pool.py`):
        //   x = torch.tensor([[[[1., nan, 3.], [nan, 2., 2.], [-inf, -inf, 5.]]]], requires_grad=True)
        //   y = torch.nn.functional.max_pool2d(x, 2, 1, 0); y.sum().backward()
        //   -> y [nan, nan, nan, 5.0], x.grad [0, 1, 0, 2, 0, 0, 0, 0, 1]
        // A NaN wins (the last one of a window: index 3, not 1, in the first window).
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        let x =
            Array2::from_shape_vec((1, 9), vec![1., nan, 3., nan, 2., 2., -inf, -inf, 5.]).unwrap();
        let mut layer = Pool2d::new(PoolKind::Max, shape(1, 3, 3), (2, 2), (1, 1), (0, 0));
        let (y, grad_input) = run(&mut layer, x.view(), Array2::ones((1, 4)).view());
        assert_close(y.as_slice().unwrap(), &[nan, nan, nan, 5.0], 0.0, "y");
        assert_eq!(
            grad_input.as_slice().unwrap(),
            &[0., 1., 0., 2., 0., 0., 0., 0., 1.]
        );

        //   x = torch.full((1, 1, 2, 2), -inf, requires_grad=True)
        //   y = torch.nn.functional.max_pool2d(x, 2, 1, 1); y.sum().backward()
        //   -> y [-inf] * 9, x.grad [4, 2, 2, 1]
        // With only -inf (padding included), each window's first element inside wins.
        let x = Array2::from_elem((1, 4), -inf);
        let mut layer = Pool2d::new(PoolKind::Max, shape(1, 2, 2), (2, 2), (1, 1), (1, 1));
        let (y, grad_input) = run(&mut layer, x.view(), Array2::ones((1, 9)).view());
        assert_eq!(y.as_slice().unwrap(), &[-inf; 9]);
        assert_eq!(grad_input.as_slice().unwrap(), &[4., 2., 2., 1.]);

        // Ties: the first in scan order (row by row) takes the gradient.
        let x = Array2::from_shape_vec((1, 9), vec![2., 2., 1., 2., 2., 2., 1., 2., 2.]).unwrap();
        let mut layer = Pool2d::new(PoolKind::Max, shape(1, 3, 3), (2, 2), (1, 1), (0, 0));
        let (y, grad_input) = run(&mut layer, x.view(), Array2::ones((1, 4)).view());
        assert_eq!(y.as_slice().unwrap(), &[2.; 4]);
        assert_eq!(
            grad_input.as_slice().unwrap(),
            &[1., 1., 0., 1., 1., 0., 0., 0., 0.]
        );
    }

    #[test]
    fn average_pool_propagates_nan() {
        let x = Array2::from_shape_vec((1, 4), vec![1., f64::NAN, 3., 4.]).unwrap();
        let mut layer = Pool2d::new(PoolKind::Average, shape(1, 2, 2), (1, 2), (1, 2), (0, 0));
        let y = layer.forward(x.view());
        assert!(y[[0, 0]].is_nan());
        assert_eq!(y[[0, 1]], 3.5);
    }
}
