//! What the layers' tests share: seeded random inputs, the integer-exact values that the
//! PyTorch scripts quoted in the tests compute too, and a comparison of value lists.

use std::ops::Range;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A `(rows, cols)` matrix of values drawn uniformly from `range`, seeded.
pub(crate) fn random(rows: usize, cols: usize, range: Range<f64>, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.random_range(range.clone()))
}

/// `count` values `((i * a) % m - c) / d`: exact in f64 and the same in Python.
pub(crate) fn fill(count: usize, a: usize, m: usize, c: f64, d: f64) -> Vec<f64> {
    (0..count).map(|i| ((i * a % m) as f64 - c) / d).collect()
}

/// Asserts that `found` and `expected` agree within `tolerance` entry by entry (NaN
/// against NaN and equal infinities count as agreeing), naming `what` and the index.
pub(crate) fn assert_close(found: &[f64], expected: &[f64], tolerance: f64, what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}: lengths");
    for (index, (a, b)) in found.iter().zip(expected).enumerate() {
        let same = (a - b).abs() <= tolerance || (a.is_nan() && b.is_nan()) || a == b;
        assert!(same, "{what}[{index}]: {a} against {b}");
    }
}
