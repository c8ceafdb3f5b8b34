//! Stochastic (mini-batch) gradient descent, as `torch.optim.SGD` defines it, with L2
//! weight decay on weight matrices only.
//!
//! For a parameter `w` with gradient `g`: `g' = g + 2 lambda w` for weight matrices
//! (the gradient of the penalty `lambda sum W^2`; biases are never decayed). Without
//! momentum, `w = w - lr g'`, computed as `w = (1 - 2 lr lambda) w - lr g` by
//! [`PlainUpdate`], the one formula that the fused training step uses too. With momentum
//! `mu`: `v = mu v + g'` (`v = g'` on the first step), then `w -= lr v`, or with Nesterov
//! `w -= lr (g' + mu v)`.

use std::collections::BTreeMap;

use crate::float::Float;
use crate::module::{Module, Parameter, ParameterKey, ParameterKind};

/// The stateless SGD update `value = shrink * value - lr * grad`, where `shrink` is
/// `1 - 2 lr lambda` for weight matrices and 1 for biases. [`Sgd`] without momentum
/// applies it parameter by parameter; the training loop's fused step applies the same
/// formula inside the weight-gradient GEMM (`beta = shrink`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PlainUpdate<F> {
    lr: F,
    weight_shrink: F,
}

impl<F: Float> PlainUpdate<F> {
    /// The update for learning rate `lr` and L2 weight decay `weight_decay` (lambda).
    pub(crate) fn new(lr: F, weight_decay: F) -> Self {
        Self {
            lr,
            weight_shrink: F::one() - (lr + lr) * weight_decay,
        }
    }

    /// The learning rate.
    pub(crate) fn lr(&self) -> F {
        self.lr
    }

    /// The factor on the old value: `1 - 2 lr lambda` for weights, 1 for biases.
    pub(crate) fn shrink(&self, kind: ParameterKind) -> F {
        match kind {
            ParameterKind::Weight => self.weight_shrink,
            ParameterKind::Bias => F::one(),
        }
    }

    /// `value = shrink * value - lr * grad`, elementwise.
    pub(crate) fn apply(&self, kind: ParameterKind, value: &mut [F], grad: &[F]) {
        assert_eq!(
            value.len(),
            grad.len(),
            "PlainUpdate: value and gradient sizes differ"
        );
        let (shrink, lr) = (self.shrink(kind), self.lr);
        for (w, &g) in value.iter_mut().zip(grad) {
            *w = shrink * *w - lr * g;
        }
    }
}

/// Mini-batch gradient descent with optional (Nesterov) momentum and L2 weight decay.
#[derive(Clone, Debug)]
pub struct Sgd<F> {
    lr: F,
    weight_decay: F,
    momentum: F,
    nesterov: bool,
    steps: u64,
    /// Momentum buffers, one per parameter, created at its first step.
    velocities: BTreeMap<ParameterKey, Vec<F>>,
}

impl<F: Float> Sgd<F> {
    /// Plain gradient descent: `w -= lr * dL/dw`.
    pub fn new(lr: F) -> Self {
        Self {
            lr,
            weight_decay: F::zero(),
            momentum: F::zero(),
            nesterov: false,
            steps: 0,
            velocities: BTreeMap::new(),
        }
    }

    /// Adds `2 * lambda * W` to the gradient of every weight matrix (L2 regularisation
    /// of `lambda * sum W^2`); biases are untouched.
    pub fn with_weight_decay(mut self, lambda: F) -> Self {
        self.weight_decay = lambda;
        self
    }

    /// Heavy-ball momentum `mu` in `[0, 1)`, as `torch.optim.SGD` (no dampening).
    pub fn with_momentum(mut self, mu: F) -> Self {
        self.momentum = mu;
        self
    }

    /// Nesterov momentum (with a non-zero momentum), as `torch.optim.SGD(nesterov=True)`.
    pub fn with_nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// The learning rate.
    pub fn lr(&self) -> F {
        self.lr
    }

    /// Changes the learning rate for later steps (learning-rate schedules).
    pub fn set_lr(&mut self, lr: F) {
        self.lr = lr;
    }

    /// The momentum `mu`.
    pub fn momentum(&self) -> F {
        self.momentum
    }

    /// The update without state, if this optimizer keeps none (no momentum): then a
    /// step is [`PlainUpdate`], and the training loop may fuse it into the GEMM.
    pub(crate) fn plain_update(&self) -> Option<PlainUpdate<F>> {
        (self.momentum == F::zero()).then(|| PlainUpdate::new(self.lr, self.weight_decay))
    }

    /// The momentum buffer of each parameter (empty until the first step with momentum).
    pub fn velocities(&self) -> &BTreeMap<ParameterKey, Vec<F>> {
        &self.velocities
    }

    /// Replaces the momentum buffers (to resume a run).
    pub fn set_velocities(&mut self, velocities: BTreeMap<ParameterKey, Vec<F>>) {
        self.velocities = velocities;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Sets the step count (to resume a run).
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// Applies the gradients stored on `model`'s parameters by its last `backward`.
    pub fn step<M: Module<F> + ?Sized>(&mut self, model: &mut M) {
        self.steps += 1;
        if let Some(update) = self.plain_update() {
            model.visit_parameters(&mut |parameter: Parameter<'_, F>| {
                update.apply(parameter.key.kind, parameter.value, parameter.grad);
            });
            return;
        }
        let (lr, momentum, nesterov) = (self.lr, self.momentum, self.nesterov);
        let weight_decay = self.weight_decay + self.weight_decay;
        let velocities = &mut self.velocities;
        model.visit_parameters(&mut |parameter: Parameter<'_, F>| {
            let decay = match parameter.key.kind {
                ParameterKind::Weight => weight_decay,
                ParameterKind::Bias => F::zero(),
            };
            let velocity = velocities.entry(parameter.key).or_default();
            let first_step = velocity.is_empty();
            if first_step {
                velocity.resize(parameter.value.len(), F::zero());
            }
            assert_eq!(
                velocity.len(),
                parameter.value.len(),
                "Sgd: parameter {} changed size between steps",
                parameter.key
            );
            for ((w, &g), v) in parameter
                .value
                .iter_mut()
                .zip(parameter.grad)
                .zip(velocity.iter_mut())
            {
                let g = g + decay * *w;
                *v = if first_step { g } else { momentum * *v + g };
                let direction = if nesterov { g + momentum * *v } else { *v };
                *w -= lr * direction;
            }
        });
    }
}
