//! The hyperparameters of a training run, checked once at the boundary.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::history::TrainError;
use crate::optim::schedule::{ScheduleConfig, ScheduleKind};
use crate::optim::OptimizerKind;

/// Hyperparameters of a training run, checked by [`TrainConfig::validate`]. The defaults
/// of everything beyond the assignment (shuffling, momentum, Adam, schedules, early
/// stopping) leave them off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set (at least 1).
    pub epochs: usize,
    /// Step size, positive and finite (the base rate of a schedule).
    pub lr: f64,
    /// Rows per update (at least 1).
    pub batch_size: usize,
    /// Seed of the shuffling stream (used only with `shuffle`).
    pub seed: u64,
    /// Visit the training rows in a new seeded random order each epoch.
    pub shuffle: bool,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// SGD: heavy-ball momentum in `[0, 1)`; 0 is plain gradient descent.
    pub momentum: f64,
    /// SGD: Nesterov momentum (needs `momentum > 0`).
    pub nesterov: bool,
    /// Adam/AdamW: the first moment's decay rate, in `[0, 1)`.
    pub beta1: f64,
    /// Adam/AdamW: the second moment's decay rate, in `[0, 1)`.
    pub beta2: f64,
    /// Adam/AdamW: added to the denominator after the square root (> 0).
    pub eps: f64,
    /// Weight decay `lambda >= 0` on weight matrices: `2 lambda W` added to the gradient
    /// (SGD, Adam), or `W *= 1 - lr lambda` (AdamW).
    pub weight_decay: f64,
    /// The learning-rate schedule.
    pub schedule: ScheduleConfig,
    /// Early stopping: stop when the monitored loss has not improved by more than
    /// `min_delta` for this many epochs (`None`: never).
    pub patience: Option<usize>,
    /// Early stopping: the improvement that counts (>= 0).
    pub min_delta: f64,
    /// Early stopping: end with the best epoch's weights (else the last).
    pub restore_best: bool,
}

/// One of [`TrainConfig`]'s settings, as named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    /// [`TrainConfig::epochs`].
    Epochs,
    /// [`TrainConfig::lr`].
    Lr,
    /// [`TrainConfig::batch_size`].
    BatchSize,
    /// [`TrainConfig::momentum`].
    Momentum,
    /// [`TrainConfig::weight_decay`].
    WeightDecay,
    /// [`TrainConfig::nesterov`].
    Nesterov,
    /// [`TrainConfig::beta1`].
    Beta1,
    /// [`TrainConfig::beta2`].
    Beta2,
    /// [`TrainConfig::eps`].
    Eps,
    /// [`ScheduleConfig::step_size`].
    StepSize,
    /// [`ScheduleConfig::gamma`].
    Gamma,
    /// [`ScheduleConfig::lr_min`].
    LrMin,
    /// [`ScheduleConfig::factor`].
    Factor,
    /// [`ScheduleConfig::warmup_epochs`].
    WarmupEpochs,
    /// [`TrainConfig::patience`].
    Patience,
    /// [`TrainConfig::min_delta`].
    MinDelta,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Setting::Epochs => "epochs",
            Setting::Lr => "lr",
            Setting::BatchSize => "batch_size",
            Setting::Momentum => "momentum",
            Setting::WeightDecay => "weight_decay",
            Setting::Nesterov => "nesterov",
            Setting::Beta1 => "beta1",
            Setting::Beta2 => "beta2",
            Setting::Eps => "eps",
            Setting::StepSize => "step_size",
            Setting::Gamma => "gamma",
            Setting::LrMin => "lr_min",
            Setting::Factor => "factor",
            Setting::WarmupEpochs => "warmup_epochs",
            Setting::Patience => "patience",
            Setting::MinDelta => "min_delta",
        })
    }
}

impl TrainConfig {
    /// The assignment's settings: in-order batches, plain gradient descent, a constant
    /// learning rate, no early stopping.
    pub fn new(epochs: usize, lr: f64, batch_size: usize, seed: u64) -> Self {
        Self {
            epochs,
            lr,
            batch_size,
            seed,
            shuffle: false,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.0,
            nesterov: false,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            schedule: ScheduleConfig::default(),
            patience: None,
            min_delta: 0.0,
            restore_best: true,
        }
    }

    /// Refuses values that cannot train: the first bad one is named with its value.
    pub fn validate(&self) -> Result<(), TrainError> {
        let invalid = |setting, value: f64, expected| {
            Err(TrainError::InvalidSetting {
                setting,
                value,
                expected,
            })
        };
        let finite_at_least = |value: f64, minimum: f64| value.is_finite() && value >= minimum;
        let unit = |value: f64| value.is_finite() && (0.0..1.0).contains(&value);
        if self.epochs == 0 {
            return invalid(Setting::Epochs, 0.0, "at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return invalid(Setting::Lr, self.lr, "a finite number > 0");
        }
        if self.batch_size == 0 {
            return invalid(Setting::BatchSize, 0.0, "at least 1");
        }
        if !unit(self.momentum) {
            return invalid(Setting::Momentum, self.momentum, "a number in [0, 1)");
        }
        if !finite_at_least(self.weight_decay, 0.0) {
            return invalid(
                Setting::WeightDecay,
                self.weight_decay,
                "a finite number >= 0",
            );
        }
        if self.nesterov && self.momentum == 0.0 {
            return invalid(Setting::Nesterov, 1.0, "a momentum > 0 with it");
        }
        if !unit(self.beta1) {
            return invalid(Setting::Beta1, self.beta1, "a number in [0, 1)");
        }
        if !unit(self.beta2) {
            return invalid(Setting::Beta2, self.beta2, "a number in [0, 1)");
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return invalid(Setting::Eps, self.eps, "a finite number > 0");
        }
        let schedule = &self.schedule;
        if schedule.kind == ScheduleKind::Step && schedule.step_size == 0 {
            return invalid(Setting::StepSize, 0.0, "at least 1");
        }
        if !(schedule.gamma.is_finite() && schedule.gamma > 0.0 && schedule.gamma <= 1.0) {
            return invalid(Setting::Gamma, schedule.gamma, "a number in (0, 1]");
        }
        if !(finite_at_least(schedule.lr_min, 0.0) && schedule.lr_min <= self.lr) {
            return invalid(Setting::LrMin, schedule.lr_min, "a number in [0, lr]");
        }
        if !(schedule.factor.is_finite() && schedule.factor > 0.0 && schedule.factor < 1.0) {
            return invalid(Setting::Factor, schedule.factor, "a number in (0, 1)");
        }
        if schedule.warmup_epochs >= self.epochs {
            return invalid(
                Setting::WarmupEpochs,
                schedule.warmup_epochs as f64,
                "fewer than the epochs",
            );
        }
        if self.patience == Some(0) {
            return invalid(Setting::Patience, 0.0, "at least 1");
        }
        if !finite_at_least(self.min_delta, 0.0) {
            return invalid(Setting::MinDelta, self.min_delta, "a finite number >= 0");
        }
        Ok(())
    }
}
