//! A training run's whole state between two batches, to save and resume exactly.

use thiserror::Error;

use super::batches::ShuffleState;
use super::early_stopping::EarlyStopping;
use super::history::{EpochStats, TrainError};
use super::Trainer;
use crate::float::Float;
use crate::optim::schedule::Scheduler;
use crate::optim::{OptimizerKind, OptimizerState};

/// Everything a [`Trainer`] needs, besides the model's weights, to continue a run as if
/// it had never stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingState<F> {
    /// Epochs finished.
    pub epoch: usize,
    /// Batches done in the next epoch (non-zero when stopped part-way through it).
    pub batch: usize,
    /// The optimizer the state belongs to.
    pub optimizer_kind: OptimizerKind,
    /// The optimizer's step count and buffers.
    pub optimizer: OptimizerState<F>,
    /// The learning-rate schedule, as it stands.
    pub scheduler: Scheduler,
    /// Early stopping, as it stands (with the best weights).
    pub early_stopping: Option<EarlyStopping<F>>,
    /// The shuffling, when the run shuffles.
    pub shuffle: Option<ShuffleState>,
    /// The epochs finished, in order.
    pub history: Vec<EpochStats>,
}

/// A saved state that does not fit the run it is resumed into.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("the saved run's {what} is {saved}, this run's is {now}")]
pub struct ResumeMismatch {
    /// What differs.
    pub what: &'static str,
    /// The saved value.
    pub saved: String,
    /// This run's value.
    pub now: String,
}

fn mismatch(what: &'static str, saved: impl ToString, now: impl ToString) -> TrainError {
    TrainError::Resume(ResumeMismatch {
        what,
        saved: saved.to_string(),
        now: now.to_string(),
    })
}

impl<F: Float> TrainingState<F> {
    /// Puts this state into `trainer` (built with the run's settings).
    pub(super) fn apply(self, trainer: &mut Trainer<'_, F>) -> Result<(), TrainError> {
        let config = &trainer.config;
        if self.optimizer_kind != config.optimizer {
            return Err(mismatch("optimizer", self.optimizer_kind, config.optimizer));
        }
        if self.epoch > config.epochs || (self.epoch == config.epochs && self.batch > 0) {
            return Err(mismatch(
                "number of finished epochs",
                self.epoch,
                format!("{} epochs in all", config.epochs),
            ));
        }
        let batches = trainer.dataset.train_y.len().div_ceil(config.batch_size);
        if self.batch >= batches {
            return Err(mismatch(
                "position in the epoch",
                format!("batch {}", self.batch),
                format!("{batches} batches per epoch"),
            ));
        }
        match (&self.shuffle, config.shuffle) {
            (Some(shuffle), true) => {
                if !trainer.batches.restore(shuffle) {
                    return Err(mismatch(
                        "shuffled order",
                        format!("a permutation of {} rows", shuffle.order.len()),
                        format!("{} training rows", trainer.dataset.train_y.len()),
                    ));
                }
            }
            (None, false) => {}
            (saved, now) => return Err(mismatch("shuffling", saved.is_some(), now)),
        }
        // Every optimizer buffer must belong to a parameter of this model, at its size.
        let mut sizes = std::collections::BTreeMap::new();
        trainer.model.visit_parameters_sizes(&mut sizes);
        for ((name, key), values) in &self.optimizer.buffers {
            if sizes.get(key) != Some(&values.len()) {
                return Err(mismatch(
                    "optimizer state",
                    format!("{name} of {key} with {} values", values.len()),
                    format!("{} values", sizes.get(key).copied().unwrap_or(0)),
                ));
            }
        }
        // The optimizer's buffers come whole: each of its kind's buffers for every
        // parameter, or none yet (before the first step).
        let names: &[&str] = match self.optimizer_kind {
            OptimizerKind::Sgd => &["momentum"],
            OptimizerKind::Adam | OptimizerKind::AdamW => &["exp_avg", "exp_avg_sq"],
        };
        if let Some(((name, key), _)) = self
            .optimizer
            .buffers
            .iter()
            .find(|((name, _), _)| !names.contains(&name.as_str()))
        {
            return Err(mismatch(
                "optimizer state",
                format!("a buffer '{name}' of {key}"),
                format!("the {} buffers {names:?}", self.optimizer_kind),
            ));
        }
        if !self.optimizer.buffers.is_empty() {
            for key in sizes.keys() {
                for name in names {
                    if !self
                        .optimizer
                        .buffers
                        .contains_key(&(name.to_string(), *key))
                    {
                        return Err(mismatch(
                            "optimizer state",
                            format!("no '{name}' buffer for {key}"),
                            format!(
                                "the {} buffers {names:?} for every parameter",
                                self.optimizer_kind
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(saved) = &self.early_stopping {
            let expected: Vec<usize> = sizes.values().copied().collect();
            let found: Vec<usize> = saved.best_weights.iter().map(Vec::len).collect();
            if !found.is_empty() && found != expected {
                return Err(mismatch(
                    "best weights",
                    format!("{found:?} values"),
                    format!("{expected:?}"),
                ));
            }
        }
        trainer.optimizer.set_state(self.optimizer);
        let mut scheduler = self.scheduler;
        scheduler.set_epochs(config.epochs);
        trainer.scheduler = scheduler;
        // The saved early-stopping state continues under this run's patience and delta.
        trainer.early_stopping = match (self.early_stopping, config.patience) {
            (Some(mut saved), Some(patience)) => {
                saved.patience = patience;
                saved.min_delta = config.min_delta;
                Some(saved)
            }
            (None, Some(patience)) => Some(EarlyStopping::new(patience, config.min_delta)),
            (_, None) => None,
        };
        trainer.epoch = self.epoch;
        trainer.position = self.batch;
        trainer.history = self.history;
        Ok(())
    }
}
