//! Small numeric helpers shared by the network, the evaluation and the reference.

use crate::float::Float;

/// The index of the largest value (the first one on ties; NaN never wins; 0 for none).
pub fn argmax<F: Float>(values: impl IntoIterator<Item = F>) -> usize {
    let mut best = (0, F::neg_infinity());
    for (index, value) in values.into_iter().enumerate() {
        if value > best.1 {
            best = (index, value);
        }
    }
    best.0
}

/// `sum x^2` over `values`, in 16 interleaved partial sums (so that the loop vectorises;
/// the rounding is that of a pairwise-like order, not of a left-to-right sum).
pub fn sum_of_squares<F: Float>(values: &[F]) -> F {
    const LANES: usize = 16;
    let mut lanes = [F::zero(); LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x * x;
        }
    }
    let mut total = tail.iter().fold(F::zero(), |sum, &x| sum + x * x);
    for lane in lanes {
        total += lane;
    }
    total
}

#[cfg(test)]
mod sum_of_squares_tests {
    use super::sum_of_squares;

    #[test]
    fn equals_the_plain_sum_to_rounding_for_every_tail_length() {
        for len in [0, 1, 15, 16, 17, 1000, 1003] {
            let values: Vec<f64> = (0..len)
                .map(|i| ((i * 37 % 101) as f64 - 50.0) / 7.0)
                .collect();
            let plain: f64 = values.iter().map(|x| x * x).sum();
            let lanes = sum_of_squares(&values);
            assert!(
                (lanes - plain).abs() <= 1e-12 * plain.max(1.0),
                "{len}: {lanes} vs {plain}"
            );
        }
    }
}
