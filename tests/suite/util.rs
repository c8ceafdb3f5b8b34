//! Helpers shared by the tests.

use nabla::init;
use ndarray::{Array2, ArrayBase, Data, Ix2};
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
