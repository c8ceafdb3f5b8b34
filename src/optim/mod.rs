//! Optimizers: they read the gradients that `backward` left on a model's parameters and
//! update the values, keeping any state (momentum buffers, moments) under each
//! parameter's [`crate::module::ParameterKey`], never by position.
//!
//! [`Optimizer`] is the closed set the trainer drives; [`Sgd`] and [`Adam`] can also be
//! used on their own. [`schedule`] changes the learning rate from epoch to epoch.

mod adam;
pub mod schedule;
mod sgd;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use adam::{Adam, Moments};
pub(crate) use sgd::PlainUpdate;
pub use sgd::Sgd;

use crate::float::Float;
use crate::module::{Module, ParameterKey};
use crate::names::UnknownName;

/// Which optimizer a run uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// [`Sgd`], with optional (Nesterov) momentum.
    #[default]
    Sgd,
    /// [`Adam`] with L2 weight decay.
    Adam,
    /// [`Adam`] with decoupled weight decay (AdamW).
    AdamW,
}

impl OptimizerKind {
    /// Every kind, in the order the command line lists them.
    pub const ALL: [OptimizerKind; 3] = [Self::Sgd, Self::Adam, Self::AdamW];

    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sgd => "sgd",
            Self::Adam => "adam",
            Self::AdamW => "adamw",
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OptimizerKind {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        UnknownName::find("optimizer", name, Self::ALL, Self::name)
    }
}

/// The optimizer a trainer drives.
#[derive(Clone, Debug)]
pub enum Optimizer<F> {
    /// Stochastic gradient descent.
    Sgd(Sgd<F>),
    /// Adam or AdamW.
    Adam(Adam<F>),
}

/// An optimizer's state, to save and resume: its step count and its buffers, each named
/// (`momentum`, `exp_avg`, `exp_avg_sq`) and keyed by parameter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState<F> {
    /// Steps taken.
    pub steps: u64,
    /// `(buffer name, parameter) -> values`.
    pub buffers: BTreeMap<(String, ParameterKey), Vec<F>>,
}

impl<F: Float> Optimizer<F> {
    /// Applies the gradients stored on `model`'s parameters by its last `backward`.
    pub fn step<M: Module<F> + ?Sized>(&mut self, model: &mut M) {
        match self {
            Optimizer::Sgd(sgd) => sgd.step(model),
            Optimizer::Adam(adam) => adam.step(model),
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> F {
        match self {
            Optimizer::Sgd(sgd) => sgd.lr(),
            Optimizer::Adam(adam) => adam.lr(),
        }
    }

    /// Changes the learning rate for later steps.
    pub fn set_lr(&mut self, lr: F) {
        match self {
            Optimizer::Sgd(sgd) => sgd.set_lr(lr),
            Optimizer::Adam(adam) => adam.set_lr(lr),
        }
    }

    /// The stateless update this optimizer applies, if it keeps no state (SGD without
    /// momentum): the trainer then fuses it into the weight-gradient GEMM.
    pub(crate) fn plain_update(&self) -> Option<PlainUpdate<F>> {
        match self {
            Optimizer::Sgd(sgd) => sgd.plain_update(),
            Optimizer::Adam(_) => None,
        }
    }

    /// The state to save for resuming.
    pub fn state(&self) -> OptimizerState<F> {
        let mut buffers = BTreeMap::new();
        let steps = match self {
            Optimizer::Sgd(sgd) => {
                for (key, values) in sgd.velocities() {
                    buffers.insert(("momentum".to_string(), *key), values.clone());
                }
                sgd.steps()
            }
            Optimizer::Adam(adam) => {
                for (key, moments) in adam.moments() {
                    buffers.insert(("exp_avg".to_string(), *key), moments.exp_avg.clone());
                    buffers.insert(("exp_avg_sq".to_string(), *key), moments.exp_avg_sq.clone());
                }
                adam.steps()
            }
        };
        OptimizerState { steps, buffers }
    }

    /// Restores a state saved by [`Optimizer::state`] (buffers of other names are
    /// ignored; the trainer checks the optimizer kind before).
    pub fn set_state(&mut self, state: OptimizerState<F>) {
        match self {
            Optimizer::Sgd(sgd) => {
                let velocities = state
                    .buffers
                    .into_iter()
                    .filter(|((name, _), _)| name == "momentum")
                    .map(|((_, key), values)| (key, values))
                    .collect();
                sgd.set_velocities(velocities);
                sgd.set_steps(state.steps);
            }
            Optimizer::Adam(adam) => {
                let mut moments: BTreeMap<ParameterKey, Moments<F>> = BTreeMap::new();
                for ((name, key), values) in state.buffers {
                    let entry = moments.entry(key).or_default();
                    match name.as_str() {
                        "exp_avg" => entry.exp_avg = values,
                        "exp_avg_sq" => entry.exp_avg_sq = values,
                        _ => {}
                    }
                }
                adam.set_state(state.steps, moments);
            }
        }
    }
}
