//! The stratified validation split: a fraction of each class's training rows, chosen
//! with the seed, held out.

use rand::seq::SliceRandom;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The stream of the seed that the split draws from (initialisation uses stream 0).
const SPLIT_STREAM: u64 = 2;

/// `(kept, held_out)`: the row indices of `labels` (classes `0..classes`) split so that
/// each class contributes `round(fraction * its count)` rows to `held_out`, chosen at
/// random with `seed`. Both lists are in ascending order, so the kept rows keep their
/// order in the data.
pub fn stratified_split(
    labels: &[usize],
    classes: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SPLIT_STREAM);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (row, &label) in labels.iter().enumerate() {
        if let Some(rows) = by_class.get_mut(label) {
            rows.push(row);
        }
    }
    let mut held_out = Vec::new();
    for rows in &mut by_class {
        let count = (fraction * rows.len() as f64).round() as usize;
        rows.shuffle(&mut rng);
        held_out.extend_from_slice(&rows[..count.min(rows.len())]);
    }
    held_out.sort_unstable();
    let mut is_held = vec![false; labels.len()];
    for &row in &held_out {
        is_held[row] = true;
    }
    let kept = (0..labels.len()).filter(|&row| !is_held[row]).collect();
    (kept, held_out)
}
