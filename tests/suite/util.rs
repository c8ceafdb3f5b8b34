//! Helpers shared by the tests.

use nabla::init;
use ndarray::{Array2, ArrayBase, ArrayView2, Data, Ix2};
use rand::Rng;

/// Asserts `|actual - expected| <= tolerance`, naming what was compared.
#[track_caller]
pub fn assert_close(what: &str, actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: expected {expected}, found {actual} (tolerance {tolerance})"
    );
}

/// The largest absolute elementwise difference of two equally shaped arrays.
#[track_caller]
pub fn max_abs_difference<F: nabla::Float, A: Data<Elem = F>, B: Data<Elem = F>>(
    a: &ArrayBase<A, Ix2>,
    b: &ArrayBase<B, Ix2>,
) -> f64 {
    assert_eq!(a.dim(), b.dim(), "shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| (x.to_f64() - y.to_f64()).abs())
        .fold(0.0, f64::max)
}

/// A `(rows, cols)` matrix of uniform values in [-scale, scale), seeded.
pub fn random_matrix(rows: usize, cols: usize, scale: f64, seed: u64) -> Array2<f64> {
    let mut rng = init::rng(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-scale..scale))
}

/// Central finite differences: step and the largest relative error allowed
/// (`|a - n| / (|a| + |n|)` over the whole array, Euclidean norms).
const STEP: f64 = 1e-6;
const MAX_RELATIVE_ERROR: f64 = 1e-6;

/// The numerical gradient of `objective` at `point`, by central differences.
pub fn numerical_gradient(
    point: &Array2<f64>,
    mut objective: impl FnMut(&Array2<f64>) -> f64,
) -> Array2<f64> {
    let mut probe = point.clone();
    let mut gradient = Array2::zeros(point.raw_dim());
    for index in ndarray::indices(point.raw_dim()) {
        let original = probe[index];
        probe[index] = original + STEP;
        let plus = objective(&probe);
        probe[index] = original - STEP;
        let minus = objective(&probe);
        probe[index] = original;
        gradient[index] = (plus - minus) / (2.0 * STEP);
    }
    gradient
}

#[track_caller]
pub fn assert_gradients_match(what: &str, analytic: ArrayView2<'_, f64>, numerical: &Array2<f64>) {
    let difference = (&analytic - numerical).mapv(|v| v * v).sum().sqrt();
    let scale = analytic.mapv(|v| v * v).sum().sqrt() + numerical.mapv(|v| v * v).sum().sqrt();
    let relative = if scale == 0.0 {
        0.0
    } else {
        difference / scale
    };
    assert!(
        relative < MAX_RELATIVE_ERROR,
        "{what}: relative error {relative:e} >= {MAX_RELATIVE_ERROR:e}\nanalytic:\n{analytic}\nnumerical:\n{numerical}"
    );
}
