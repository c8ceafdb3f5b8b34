//! The hyperparameters of a training run, checked once at the boundary.

use std::fmt;

use super::history::TrainError;

/// Hyperparameters of a training run, checked by [`TrainConfig::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set (at least 1).
    pub epochs: usize,
    /// Step size, positive and finite.
    pub lr: f64,
    /// Rows per update (at least 1).
    pub batch_size: usize,
    /// Seed of the shuffling stream (used only with `shuffle`).
    pub seed: u64,
    /// Visit the training rows in a new seeded random order each epoch.
    pub shuffle: bool,
    /// Heavy-ball momentum in `[0, 1)`; 0 is plain gradient descent.
    pub momentum: f64,
    /// Nesterov momentum (needs `momentum > 0`).
    pub nesterov: bool,
    /// L2 weight decay `lambda >= 0` (weights only).
    pub weight_decay: f64,
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
        })
    }
}

impl TrainConfig {
    /// The assignment's settings: in-order batches, no momentum, no weight decay.
    pub fn new(epochs: usize, lr: f64, batch_size: usize, seed: u64) -> Self {
        Self {
            epochs,
            lr,
            batch_size,
            seed,
            shuffle: false,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
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
        if self.epochs == 0 {
            return invalid(Setting::Epochs, 0.0, "at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return invalid(Setting::Lr, self.lr, "a finite number > 0");
        }
        if self.batch_size == 0 {
            return invalid(Setting::BatchSize, 0.0, "at least 1");
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return invalid(Setting::Momentum, self.momentum, "a number in [0, 1)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid(
                Setting::WeightDecay,
                self.weight_decay,
                "a finite number >= 0",
            );
        }
        if self.nesterov && self.momentum == 0.0 {
            return invalid(Setting::Nesterov, 1.0, "a momentum > 0 with it");
        }
        Ok(())
    }
}
