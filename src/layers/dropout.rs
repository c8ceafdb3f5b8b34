//! Dropout (PyTorch's `nn.Dropout`): in training each element is kept with probability
//! `1 - p` and scaled by `1 / (1 - p)`, zeroed otherwise; in evaluation `y = x`.
//!
//! The masks come from the layer's own seeded stream, so a run is reproducible, and its
//! position can be saved and restored (a resumed run draws the masks it would have drawn).
//! Shapes: `x, y, mask: (batch, features)`.
//!
//! Training: `y = x * mask`, `dL/dx = dL/dy * mask`, where each mask element is
//! `1 / (1 - p)` (rounded as PyTorch's `noise.div_(1 - p)`: `1 - p` in f64, rounded to
//! `F`, then the division in `F`) if the stream's next 32-bit word is below
//! `(1 - p) 2^32`, else 0. The words are drawn serially in row-major order, one per
//! element, so the masks do not depend on the thread count; `p = 0` and `p = 1` draw
//! nothing (every element kept, or none). Evaluation: `y = x`, `dL/dx = dL/dy`.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::buffer::Buffer;
use crate::float::Float;
use crate::module::Module;
use crate::threads::{worth_parallel, CHEAP_ELEMENT};

/// A dropout layer with its random stream and the last mask.
#[derive(Clone, Debug)]
pub struct Dropout<F> {
    p: f64,
    seed: u64,
    stream: ChaCha8Rng,
    training: bool,
    /// An element is kept when its 32-bit word is below this: `(1 - p) 2^32`, rounded down.
    keep_below: u64,
    /// `1 / (1 - p)` in `F` (0 for `p = 1`).
    scale: F,
    /// Whether the last `forward` applied a mask (training) or passed `x` through.
    masked: bool,
    /// `(batch, features)`: 0 or `scale`, from the last training `forward`.
    mask: Buffer<F>,
    output: Buffer<F>,
    grad_input: Buffer<F>,
}

impl<F: Float> Dropout<F> {
    /// A layer zeroing with probability `p` (in `[0, 1]`), in training mode, its stream
    /// seeded with `seed`.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1]` (NaN included).
    #[track_caller]
    pub fn new(p: f64, seed: u64) -> Self {
        assert!(
            (0.0..=1.0).contains(&p),
            "Dropout::new: p must be in [0, 1], found {p}"
        );
        let scale = if p == 1.0 {
            F::zero()
        } else {
            F::one() / F::from_f64(1.0 - p)
        };
        Self {
            p,
            seed,
            stream: ChaCha8Rng::seed_from_u64(seed),
            training: true,
            keep_below: ((1.0 - p) * 4_294_967_296.0) as u64,
            scale,
            masked: false,
            mask: Buffer::new(),
            output: Buffer::new(),
            grad_input: Buffer::new(),
        }
    }

    /// `p`.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// Whether masks are drawn (training) or the input passes unchanged (evaluation).
    pub fn training(&self) -> bool {
        self.training
    }

    /// Switches between training and evaluation.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// The last training `forward`'s mask `(batch, features)`: 0 or `1 / (1 - p)`.
    pub fn mask(&self) -> ArrayView2<'_, F> {
        self.mask.view()
    }

    /// The seed of the layer's stream.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How far the stream has advanced (its word position).
    pub fn stream_position(&self) -> u128 {
        self.stream.get_word_pos()
    }

    /// Moves the stream to `position` (from [`Dropout::stream_position`]).
    pub fn set_stream_position(&mut self, position: u128) {
        self.stream.set_word_pos(position);
    }

    /// Draws a fresh `(rows, cols)` mask, serially in row-major order.
    fn draw_mask(&mut self, rows: usize, cols: usize) {
        let mut mask = self.mask.resize(rows, cols);
        // Cannot fail: a buffer's view is in standard layout.
        let mask = mask.as_slice_mut().expect("standard layout");
        if self.p == 0.0 || self.p == 1.0 {
            mask.fill(self.scale);
            return;
        }
        for value in mask {
            let kept = u64::from(self.stream.next_u32()) < self.keep_below;
            *value = if kept { self.scale } else { F::zero() };
        }
    }
}

/// `out = a * b` elementwise, all `(batch, features)`, on the pool if worth it.
fn multiply<F: Float>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>, out: ArrayViewMut2<'_, F>) {
    let zip = Zip::from(out).and(a).and(b);
    if worth_parallel(a.len(), CHEAP_ELEMENT) {
        zip.par_for_each(|out, &a, &b| *out = a * b);
    } else {
        zip.for_each(|out, &a, &b| *out = a * b);
    }
}

impl<F: Float> Module<F> for Dropout<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // x: (batch, features) -> y = x * mask: (batch, features)
        let (rows, cols) = input.dim();
        self.masked = self.training;
        if self.training {
            self.draw_mask(rows, cols);
            multiply(input, self.mask.view(), self.output.resize(rows, cols));
        } else {
            self.output.resize(rows, cols).assign(&input);
        }
        self.output.view()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // dL/dy: (batch, features) -> dL/dx = dL/dy * mask: (batch, features)
        let (rows, cols) = self.output.shape();
        assert_eq!(
            grad_output.dim(),
            (rows, cols),
            "Dropout::backward: grad_output shape differs from the last forward's output"
        );
        let grad_input = self.grad_input.resize(rows, cols);
        if self.masked {
            multiply(grad_output, self.mask.view(), grad_input);
        } else {
            let mut grad_input = grad_input;
            grad_input.assign(&grad_output);
        }
        self.grad_input.view()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::layers::testing;

    /// Seeded inputs in this file's range.
    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        testing::random(rows, cols, -1.0..3.0, seed)
    }

    #[test]
    fn the_kept_fraction_and_the_mean_are_as_expected() {
        let x = random(500, 400, 1);
        for p in [0.1, 0.5, 0.8] {
            let mut layer = Dropout::<f64>::new(p, 7);
            let y = layer.forward(x.view()).to_owned();
            let mask = layer.mask().to_owned();
            let n = mask.len() as f64;
            let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64;
            // Binomial(n, 1 - p): within 5 standard deviations.
            let sd = (n * p * (1.0 - p)).sqrt();
            assert!(
                (kept - n * (1.0 - p)).abs() < 5.0 * sd,
                "p {p}: kept {kept} of {n}"
            );
            assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0 / (1.0 - p)));
            assert_eq!(y, &x * &mask);
            // E[y] = E[x]: the mean of y is within a few standard errors of x's.
            let spread = x.mapv(|v| v * v).mean().unwrap().sqrt() * (p / (1.0 - p) / n).sqrt();
            let (mean_x, mean_y) = (x.mean().unwrap(), y.mean().unwrap());
            assert!(
                (mean_y - mean_x).abs() < 5.0 * spread,
                "p {p}: {mean_y} vs {mean_x}"
            );
        }
    }

    #[test]
    fn backward_multiplies_by_the_same_mask() {
        let x = random(6, 5, 2);
        let dy = random(6, 5, 3);
        let mut layer = Dropout::<f64>::new(0.4, 11);
        layer.forward(x.view());
        let mask = layer.mask().to_owned();
        assert_eq!(layer.backward(dy.view()), &dy * &mask);
    }

    #[test]
    fn evaluation_passes_through_and_keeps_the_last_mask() {
        let x = random(4, 3, 4);
        let mut layer = Dropout::<f64>::new(0.5, 5);
        layer.forward(x.view());
        let mask = layer.mask().to_owned();
        let position = layer.stream_position();
        layer.set_training(false);
        assert!(!layer.training());
        assert_eq!(layer.forward(x.view()), x);
        assert_eq!(layer.backward(x.view()), x);
        assert_eq!(layer.mask(), mask);
        assert_eq!(
            layer.stream_position(),
            position,
            "evaluation draws nothing"
        );
    }

    #[test]
    fn p_zero_is_the_identity_and_p_one_zeroes_everything() {
        let x = random(3, 4, 6);
        let mut keep_all = Dropout::<f64>::new(0.0, 1);
        assert_eq!(keep_all.forward(x.view()), x);
        assert_eq!(keep_all.backward(x.view()), x);
        let mut drop_all = Dropout::<f64>::new(1.0, 1);
        assert!(drop_all.forward(x.view()).iter().all(|&y| y == 0.0));
        assert!(drop_all.backward(x.view()).iter().all(|&g| g == 0.0));
        assert!(drop_all.mask().iter().all(|&m| m == 0.0));
    }

    #[test]
    fn a_restored_stream_draws_the_next_mask() {
        let x = random(8, 9, 7);
        let mut layer = Dropout::<f32>::new(0.3, 42);
        let x = x.mapv(|v| v as f32);
        layer.forward(x.view());
        let position = layer.stream_position();
        assert_eq!(position, 72, "one 32-bit word per element");
        let next = layer.forward(x.view()).to_owned();
        let mut restored = Dropout::<f32>::new(0.3, 42);
        restored.set_stream_position(position);
        assert_eq!(restored.forward(x.view()), next);
        assert_eq!(restored.seed(), 42);
        assert_eq!(restored.p(), 0.3);
        // Another seed, another mask.
        let mut other = Dropout::<f32>::new(0.3, 43);
        other.set_stream_position(position);
        assert_ne!(other.forward(x.view()), next);
    }

    #[test]
    fn a_smaller_batch_after_a_larger_one() {
        let mut layer = Dropout::<f64>::new(0.5, 3);
        layer.forward(random(10, 4, 8).view());
        let x = random(3, 4, 9);
        let y = layer.forward(x.view()).to_owned();
        assert_eq!(layer.mask().dim(), (3, 4));
        assert_eq!(y, &x * &layer.mask());
        let mask = layer.mask().to_owned();
        assert_eq!(layer.backward(x.view()), &x * &mask);
    }

    #[test]
    fn the_mask_does_not_depend_on_the_threads() {
        let x = random(400, 300, 10);
        let mut serial = Dropout::<f64>::new(0.25, 9);
        let y = serial.forward(x.view()).to_owned();
        let y_par = crate::threads::on_pool(3, || {
            assert!(worth_parallel(x.len(), CHEAP_ELEMENT));
            Dropout::<f64>::new(0.25, 9).forward(x.view()).to_owned()
        });
        assert_eq!(y, y_par);
    }

    #[test]
    #[should_panic(expected = "p must be in [0, 1], found 1.5")]
    fn p_outside_the_unit_interval_is_refused() {
        Dropout::<f64>::new(1.5, 0);
    }

    /// The kept elements' value, bit for bit, from PyTorch 2.15 (CPU), made by:
    ///
    /// ```python
    /// import torch
    /// for dtype in [torch.float32, torch.float64]:
    ///     for p in [0.1, 0.3, 0.7, 0.9]:
    ///         y = torch.nn.Dropout(p)(torch.ones(10000, dtype=dtype))
    ///         print(dtype, p, repr(y[y != 0].unique().tolist()))
    /// ```
    #[test]
    fn the_scale_matches_pytorch() {
        // The f32 values are exact in f64. p = 0.9 tells the roundings apart: `1 / (1 -
        // p as f32)` would be 9.999998092651367.
        let f32_scales = [
            (0.1, 1.1111111640930176),
            (0.3, 1.4285714626312256),
            (0.7, 3.3333332538604736),
            (0.9, 10.0),
        ];
        let f64_scales = [
            (0.1, 1.1111111111111112),
            (0.3, 1.4285714285714286),
            (0.7, 3.333333333333333),
            (0.9, 10.000000000000002),
        ];
        let x = Array2::<f64>::ones((100, 100));
        for (p, expected) in f64_scales {
            let y = Dropout::<f64>::new(p, 1).forward(x.view()).to_owned();
            assert!(y.iter().any(|&y| y == expected), "f64 p {p}");
            assert!(y.iter().all(|&y| y == 0.0 || y == expected), "f64 p {p}");
        }
        let x = x.mapv(|v| v as f32);
        for (p, expected) in f32_scales {
            let y = Dropout::<f32>::new(p, 1).forward(x.view()).to_owned();
            assert!(y.iter().any(|&y| f64::from(y) == expected), "f32 p {p}");
            assert!(
                y.iter().all(|&y| y == 0.0 || f64::from(y) == expected),
                "f32 p {p}"
            );
        }
    }
}
