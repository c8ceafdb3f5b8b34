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
