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

    /// An epoch finished and was evaluated (`stats.partial` when training was stopped
    /// part-way through it: the model was evaluated as it stood).
    fn epoch_finished(&mut self, stats: &EpochStats) {
        let _ = stats;
    }

    /// Asked after every batch: `true` stops training there (for example on Ctrl-C).
    /// The epoch is then evaluated as it stands and reported as partial.
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything.
impl Observer for () {}
