//! Learning-rate schedules, stepped once per epoch, as PyTorch's schedulers define them.
//!
//! For the epoch with 0-based index `e` and base rate `lr`:
//!
//! - `constant`: `lr`.
//! - `step` (`StepLR(step_size, gamma)`): `lr * gamma^floor(e / step_size)`.
//! - `cosine` (`CosineAnnealingLR(T_max = epochs, eta_min = lr_min)`):
//!   `lr_min + (lr - lr_min) (1 + cos(pi e / T_max)) / 2`.
//! - `plateau` (`ReduceLROnPlateau(mode='min', factor, patience, threshold=1e-4,
//!   threshold_mode='rel', min_lr = lr_min)`): the rate is multiplied by `factor` when the
//!   monitored loss has not fallen below `best (1 - 1e-4)` for more than `patience` epochs.
//! - warm-up over `N` epochs (`LinearLR(start_factor = 1/(N+1), total_iters = N)`, then the
//!   schedule, as `SequentialLR` with the milestone `N`): `lr k / (N + 1)` in epoch `k`
//!   (1-based) of the warm-up; the schedule then runs over the remaining epochs (cosine's
//!   `T_max` is `epochs - N`; plateau watches the loss from the end of the warm-up).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::names::UnknownName;

/// Which schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiplied by `gamma` every `step_size` epochs.
    Step,
    /// Cosine annealing from the base rate to `lr_min`.
    Cosine,
    /// Multiplied by `factor` when the monitored loss stops improving.
    Plateau,
}

impl ScheduleKind {
    /// Every kind, in the order the command line lists them.
    pub const ALL: [ScheduleKind; 4] = [Self::Constant, Self::Step, Self::Cosine, Self::Plateau];

    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::Step => "step",
            Self::Cosine => "cosine",
            Self::Plateau => "plateau",
        }
    }
}

impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScheduleKind {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        UnknownName::find("learning-rate schedule", name, Self::ALL, Self::name)
    }
}

/// A schedule and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// Which schedule.
    pub kind: ScheduleKind,
    /// `step`: epochs between reductions (at least 1).
    pub step_size: usize,
    /// `step`: the factor at each reduction, in (0, 1].
    pub gamma: f64,
    /// `cosine`: the final rate; `plateau`: the smallest rate (>= 0).
    pub lr_min: f64,
    /// `plateau`: epochs without improvement before a reduction.
    pub patience: usize,
    /// `plateau`: the factor at each reduction, in (0, 1).
    pub factor: f64,
    /// Epochs of linear warm-up before the schedule (0: none).
    pub warmup_epochs: usize,
}

impl Default for ScheduleConfig {
    /// A constant rate; the other parameters at PyTorch's defaults (`gamma` 0.1,
    /// `patience` 10, `factor` 0.1) and `step_size` 10.
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Constant,
            step_size: 10,
            gamma: 0.1,
            lr_min: 0.0,
            patience: 10,
            factor: 0.1,
            warmup_epochs: 0,
        }
    }
}

/// ReduceLROnPlateau's relative threshold.
const PLATEAU_THRESHOLD: f64 = 1e-4;
/// ReduceLROnPlateau's `eps`: reductions smaller than this are skipped.
const PLATEAU_EPS: f64 = 1e-8;

/// A schedule in progress: the rate in force for the coming epoch, and what `plateau`
/// remembers. Saved and restored whole to resume a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scheduler {
    config: ScheduleConfig,
    base_lr: f64,
    epochs: usize,
    /// Epochs stepped so far (the 0-based index of the coming epoch).
    epoch: usize,
    lr: f64,
    /// `plateau`: the best monitored loss so far (none before the first epoch).
    best: Option<f64>,
    bad_epochs: usize,
}

impl Scheduler {
    /// The schedule `config` over a run of `epochs` epochs from `base_lr`.
    pub fn new(config: ScheduleConfig, base_lr: f64, epochs: usize) -> Self {
        let mut scheduler = Self {
            config,
            base_lr,
            epochs,
            epoch: 0,
            lr: base_lr,
            best: None,
            bad_epochs: 0,
        };
        scheduler.lr = scheduler.scheduled_lr();
        scheduler
    }

    /// The learning rate for the coming epoch.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Epochs stepped so far.
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    /// The run's length changed on resume (more epochs): cosine stretches to it.
    pub fn set_epochs(&mut self, epochs: usize) {
        self.epochs = epochs;
        if self.config.kind != ScheduleKind::Plateau {
            self.lr = self.scheduled_lr();
        }
    }

    /// Ends an epoch whose monitored loss was `loss`, and sets the next epoch's rate.
    pub fn step(&mut self, loss: f64) {
        let warming = self.epoch < self.config.warmup_epochs;
        self.epoch += 1;
        if self.config.kind == ScheduleKind::Plateau && !warming {
            if self
                .best
                .is_none_or(|best| loss < best * (1.0 - PLATEAU_THRESHOLD))
            {
                self.best = Some(loss);
                self.bad_epochs = 0;
            } else {
                self.bad_epochs += 1;
            }
            if self.bad_epochs > self.config.patience {
                let reduced = (self.lr * self.config.factor).max(self.config.lr_min);
                if self.lr - reduced > PLATEAU_EPS {
                    self.lr = reduced;
                }
                self.bad_epochs = 0;
            }
        }
        if self.config.kind != ScheduleKind::Plateau || self.epoch <= self.config.warmup_epochs {
            self.lr = self.scheduled_lr();
        }
    }

    /// The closed-form rate for the coming epoch (for plateau: the warm-up, then the base).
    fn scheduled_lr(&self) -> f64 {
        let config = &self.config;
        let warmup = config.warmup_epochs;
        if self.epoch < warmup {
            return self.base_lr * (self.epoch + 1) as f64 / (warmup + 1) as f64;
        }
        let e = self.epoch - warmup;
        match config.kind {
            ScheduleKind::Constant | ScheduleKind::Plateau => self.base_lr,
            ScheduleKind::Step => {
                self.base_lr * config.gamma.powi((e / config.step_size.max(1)) as i32)
            }
            ScheduleKind::Cosine => {
                let t_max = self.epochs.saturating_sub(warmup).max(1) as f64;
                let cosine = (std::f64::consts::PI * e as f64 / t_max).cos();
                config.lr_min + (self.base_lr - config.lr_min) * (1.0 + cosine) / 2.0
            }
        }
    }
}
