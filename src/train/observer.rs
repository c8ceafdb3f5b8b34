//! The training loop never prints: it tells an [`Observer`].

use super::history::EpochStats;

/// Receives progress from [`super::train_with`]; the library itself prints nothing.
pub trait Observer {
    /// An epoch with `batches` batches begins.
    fn epoch_started(&mut self, epoch: usize, batches: usize) {
        let _ = (epoch, batches);
    }

    /// Batch `batch` (1-based) of `epoch` finished with mean loss `loss`.
    fn batch_finished(&mut self, epoch: usize, batch: usize, loss: f64) {
        let _ = (epoch, batch, loss);
    }

    /// An epoch finished and was evaluated.
    fn epoch_finished(&mut self, stats: &EpochStats) {
        let _ = stats;
    }
}

/// An observer that ignores everything.
impl Observer for () {}
