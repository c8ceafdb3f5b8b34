//! Which training rows form each batch: the data in order, or a seeded permutation.

use std::ops::Range;

use ndarray::{s, ArrayView1};
use rand::seq::SliceRandom;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Rows};
use crate::float::Float;
use crate::init::{self, InitRng};

/// Where the shuffling stands: the current order of the rows and the random stream's
/// position (its seed, stream and word position), enough to continue it exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShuffleState {
    /// The rows in the current epoch's order.
    pub order: Vec<usize>,
    /// The stream's 32-byte seed.
    pub seed: [u8; 32],
    /// The stream number.
    pub stream: u64,
    /// The position in the stream, in 32-bit words.
    pub word_pos: u128,
}

/// Chooses the rows of each training batch: slices of the data in order, or slices of a
/// seeded permutation, drawn anew each epoch, when shuffling. Buffers are reused.
pub(crate) struct BatchSource {
    order: Option<(Vec<usize>, InitRng)>,
    labels: Vec<usize>,
}

impl BatchSource {
    /// In-order batches of `rows` rows, or shuffled ones seeded by `seed`.
    pub(crate) fn new(rows: usize, batch_size: usize, shuffle: bool, seed: u64) -> Self {
        let order = shuffle.then(|| ((0..rows).collect(), init::rng(seed)));
        Self {
            order,
            // A batch never holds more than the rows (a larger batch size is one batch).
            labels: Vec::with_capacity(batch_size.min(rows)),
        }
    }

    /// Draws the epoch's order (when shuffling).
    pub(crate) fn start_epoch(&mut self) {
        if let Some((order, rng)) = &mut self.order {
            order.shuffle(rng);
        }
    }

    /// The shuffling's state, when shuffling.
    pub(crate) fn state(&self) -> Option<ShuffleState> {
        self.order.as_ref().map(|(order, rng)| ShuffleState {
            order: order.clone(),
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos(),
        })
    }

    /// Continues from a saved shuffling state; `false` if it does not fit (no
    /// shuffling here, or an order that is not a permutation of these rows).
    pub(crate) fn restore(&mut self, state: &ShuffleState) -> bool {
        let Some((order, rng)) = &mut self.order else {
            return false;
        };
        let mut seen = vec![false; order.len()];
        let permutation = state.order.len() == order.len()
            && state
                .order
                .iter()
                .all(|&row| row < seen.len() && !std::mem::replace(&mut seen[row], true));
        if !permutation {
            return false;
        }
        order.copy_from_slice(&state.order);
        *rng = InitRng::from_seed(state.seed);
        rng.set_stream(state.stream);
        rng.set_word_pos(state.word_pos);
        true
    }

    /// The rows and labels `(len)` of batch positions `range`.
    pub(crate) fn select<'a, F: Float>(
        &'a mut self,
        dataset: &'a Dataset<F>,
        range: Range<usize>,
    ) -> (Rows<'a>, ArrayView1<'a, usize>) {
        match &self.order {
            None => (Rows::Range(range.clone()), dataset.train_y.slice(s![range])),
            Some((order, _)) => {
                let indices = &order[range];
                self.labels.clear();
                self.labels
                    .extend(indices.iter().map(|&i| dataset.train_y[i]));
                (Rows::Indices(indices), ArrayView1::from(&self.labels[..]))
            }
        }
    }
}
