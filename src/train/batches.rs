//! Which training rows form each batch: the data in order, or a seeded permutation.

use std::ops::Range;

use ndarray::{s, ArrayView1};
use rand::seq::SliceRandom;

use crate::data::{Dataset, Rows};
use crate::float::Float;
use crate::init::{self, InitRng};

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
            labels: Vec::with_capacity(batch_size),
        }
    }

    /// Draws the epoch's order (when shuffling).
    pub(crate) fn start_epoch(&mut self) {
        if let Some((order, rng)) = &mut self.order {
            order.shuffle(rng);
        }
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
