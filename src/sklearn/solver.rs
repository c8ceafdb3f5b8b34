//! scikit-learn's stochastic solvers (`_stochastic_optimizers.py`): SGD with momentum
//! or Nesterov momentum and its three learning-rate schedules, and Adam. Their
//! formulas differ from PyTorch's (and so from [`crate::optim`]): SGD keeps the update
//! itself as its velocity, `v = mu v - lr g; w += v` (Nesterov: `w += mu v - lr g`),
//! and Adam folds both bias corrections into the rate, `lr_t = lr sqrt(1 - b2^t) / (1 -
//! b1^t); w -= lr_t m / (sqrt(v) + eps)`.
//!
//! The gradient `g` of a weight matrix includes the L2 term, `g = (dW + alpha W) / n`,
//! and a bias's is `g = db / n`, where `dW, db` are the sums over the batch that
//! [`Module::backward`](crate::module::Module::backward) leaves on each layer and `n` is
//! the batch's rows (or, with sample weights, their total).

use crate::float::Float;
use crate::module::{Module, ParameterKind};

use super::{LearningRate, Settings, SolverKind};

/// A solver's state: its buffers (one per parameter, in the model's parameter order) and
/// counters. scikit-learn keeps it between `partial_fit` calls and creates it anew for
/// each `fit`.
#[derive(Clone, Debug, PartialEq)]
pub enum Solver<F> {
    /// SGD: the current learning rate and a velocity per parameter.
    Sgd {
        /// The learning rate now (schedules change it).
        learning_rate: f64,
        /// Momentum `mu`, fixed when the solver is created.
        momentum: f64,
        /// Nesterov's variant.
        nesterov: bool,
        /// The schedule.
        schedule: LearningRate,
        /// `learning_rate_init`.
        learning_rate_init: f64,
        /// `power_t` for `invscaling`.
        power_t: f64,
        /// The last update of each parameter.
        velocities: Vec<Vec<F>>,
    },
    /// Adam.
    Adam {
        /// `learning_rate_init`.
        learning_rate_init: f64,
        /// The bias-corrected rate of the last step.
        learning_rate: f64,
        /// Decay of the first moment.
        beta_1: f64,
        /// Decay of the second moment.
        beta_2: f64,
        /// Added to `sqrt(v)`.
        epsilon: f64,
        /// Steps taken.
        t: u64,
        /// First moments, per parameter.
        ms: Vec<Vec<F>>,
        /// Second moments, per parameter.
        vs: Vec<Vec<F>>,
    },
}

impl<F: Float> Solver<F> {
    /// A new solver as `settings` says, with zero buffers of the sizes of `sizes` (each
    /// parameter's length, in the model's order).
    pub fn new(settings: &Settings, sizes: &[usize]) -> Self {
        let zeros = || {
            sizes
                .iter()
                .map(|&n| vec![F::zero(); n])
                .collect::<Vec<_>>()
        };
        match settings.solver {
            SolverKind::Sgd => Solver::Sgd {
                learning_rate: settings.learning_rate_init,
                momentum: settings.momentum,
                nesterov: settings.nesterovs_momentum,
                schedule: settings.learning_rate,
                learning_rate_init: settings.learning_rate_init,
                power_t: settings.power_t,
                velocities: zeros(),
            },
            SolverKind::Adam => Solver::Adam {
                learning_rate_init: settings.learning_rate_init,
                learning_rate: settings.learning_rate_init,
                beta_1: settings.beta_1,
                beta_2: settings.beta_2,
                epsilon: settings.epsilon,
                t: 0,
                ms: zeros(),
                vs: zeros(),
            },
        }
    }

    /// Which solver this is.
    pub fn kind(&self) -> SolverKind {
        match self {
            Solver::Sgd { .. } => SolverKind::Sgd,
            Solver::Adam { .. } => SolverKind::Adam,
        }
    }

    /// Whether the buffers have the given sizes (one per parameter, in order).
    pub fn fits(&self, sizes: &[usize]) -> bool {
        let matches = |buffers: &[Vec<F>]| {
            buffers.len() == sizes.len() && buffers.iter().zip(sizes).all(|(b, &n)| b.len() == n)
        };
        match self {
            Solver::Sgd { velocities, .. } => matches(velocities),
            Solver::Adam { ms, vs, .. } => matches(ms) && matches(vs),
        }
    }

    /// The current learning rate (`_optimizer.learning_rate`).
    pub fn learning_rate(&self) -> f64 {
        match self {
            Solver::Sgd { learning_rate, .. } | Solver::Adam { learning_rate, .. } => {
                *learning_rate
            }
        }
    }

    /// The plain update `w = (1 - lr alpha / n) w - (lr / n) dW` that this step amounts
    /// to (`n`: the batch's rows or weight total), when it keeps no state that matters
    /// (SGD without momentum): the training step then fuses it into the weight-gradient
    /// GEMM. Returns `(lr / n, alpha / 2)` as a learning rate and a weight decay for
    /// [`crate::optim::PlainUpdate`].
    pub fn plain(&self, alpha: f64, divisor: f64) -> Option<(f64, f64)> {
        match self {
            Solver::Sgd {
                learning_rate,
                momentum,
                ..
            } if *momentum == 0.0 => Some((learning_rate / divisor, alpha / 2.0)),
            _ => None,
        }
    }

    /// One update of every parameter of `model` from the batch sums of its last
    /// `backward`, divided by `divisor` (the batch's rows or weight total), with L2
    /// strength `alpha`.
    pub fn step<M: Module<F> + ?Sized>(&mut self, model: &mut M, alpha: f64, divisor: f64) {
        let alpha = F::from_f64(alpha);
        let rows = F::from_f64(divisor);
        let gradient = move |weight: bool, w: F, sum: F| {
            if weight {
                (sum + alpha * w) / rows
            } else {
                sum / rows
            }
        };
        let mut index = 0;
        match self {
            Solver::Sgd {
                learning_rate,
                momentum,
                nesterov,
                velocities,
                ..
            } => {
                let (lr, mu, nesterov) = (
                    F::from_f64(*learning_rate),
                    F::from_f64(*momentum),
                    *nesterov,
                );
                model.visit_parameters(&mut |parameter| {
                    let weight = parameter.key.kind == ParameterKind::Weight;
                    let values = parameter.value.iter_mut().zip(parameter.grad);
                    for ((w, &sum), velocity) in values.zip(velocities[index].iter_mut()) {
                        let g = gradient(weight, *w, sum);
                        let v = mu * *velocity - lr * g;
                        *velocity = v;
                        *w += if nesterov { mu * v - lr * g } else { v };
                    }
                    index += 1;
                });
            }
            Solver::Adam {
                learning_rate_init,
                learning_rate,
                beta_1,
                beta_2,
                epsilon,
                t,
                ms,
                vs,
            } => {
                *t += 1;
                let steps = i32::try_from(*t).unwrap_or(i32::MAX);
                *learning_rate = *learning_rate_init * (1.0 - beta_2.powi(steps)).sqrt()
                    / (1.0 - beta_1.powi(steps));
                let (b1, b2) = (F::from_f64(*beta_1), F::from_f64(*beta_2));
                let (one_minus_b1, one_minus_b2) =
                    (F::from_f64(1.0 - *beta_1), F::from_f64(1.0 - *beta_2));
                let (lr, eps) = (F::from_f64(*learning_rate), F::from_f64(*epsilon));
                model.visit_parameters(&mut |parameter| {
                    let weight = parameter.key.kind == ParameterKind::Weight;
                    let values = parameter.value.iter_mut().zip(parameter.grad);
                    let moments = ms[index].iter_mut().zip(vs[index].iter_mut());
                    for ((w, &sum), (m, v)) in values.zip(moments) {
                        let g = gradient(weight, *w, sum);
                        *m = b1 * *m + one_minus_b1 * g;
                        *v = b2 * *v + one_minus_b2 * (g * g);
                        *w += -lr * *m / (v.sqrt() + eps);
                    }
                    index += 1;
                });
            }
        }
    }

    /// The end of an epoch, after `samples` samples in all (`t_`): `invscaling` sets
    /// `lr = learning_rate_init / (samples + 1)^power_t`.
    pub fn epoch_ended(&mut self, samples: u64) {
        if let Solver::Sgd {
            learning_rate,
            schedule: LearningRate::InvScaling,
            learning_rate_init,
            power_t,
            ..
        } = self
        {
            *learning_rate = *learning_rate_init / (samples as f64 + 1.0).powf(*power_t);
        }
    }

    /// `n_iter_no_change` epochs without progress: whether to stop. The `adaptive`
    /// schedule instead divides the rate by 5 and goes on, until it is 1e-6 or less.
    /// Returns the stop decision and the message scikit-learn's verbose mode appends.
    pub fn no_progress(&mut self) -> (bool, String) {
        match self {
            Solver::Sgd {
                learning_rate,
                schedule: LearningRate::Adaptive,
                ..
            } => {
                if *learning_rate <= 1e-6 {
                    (true, " Learning rate too small. Stopping.".to_string())
                } else {
                    *learning_rate /= 5.0;
                    (
                        false,
                        format!(" Setting learning rate to {:.6}", learning_rate),
                    )
                }
            }
            _ => (true, " Stopping.".to_string()),
        }
    }
}
