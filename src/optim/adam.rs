//! Adam and AdamW, as `torch.optim.Adam` and `torch.optim.AdamW` define them.
//!
//! For a parameter `w` with gradient `g`, at step `t` (1-based):
//!
//! ```text
//! Adam:   g = g + 2 lambda w                  (L2, weight matrices only, as nabla's SGD)
//! AdamW:  w = w (1 - lr lambda)               (decoupled, weight matrices only)
//! m = m + (1 - beta1) (g - m)                 (torch's lerp)
//! v = beta2 v + (1 - beta2) g g
//! w = w - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//! ```
//!
//! `eps` is added after the square root, as PyTorch does. PyTorch's AdamW decays every
//! parameter it is given; nabla decays weight matrices only (the equivalent of giving
//! PyTorch the biases in a group with `weight_decay=0`). Each update is one fused pass over
//! the parameter, split across the cores when the parameter is large (the per-core
//! step's crew while it holds them, else the pool).

use std::collections::BTreeMap;

use std::sync::{Mutex, PoisonError};

use ndarray::{ArrayView1, ArrayViewMut1};

use crate::float::Float;
use crate::module::{Module, Parameter, ParameterKey, ParameterKind};
use crate::threads::{share, share_width, TRANSCENDENTAL_ELEMENT};

/// The first and second moment estimates of one parameter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Moments<F> {
    /// `m`, the running mean of the gradient.
    pub exp_avg: Vec<F>,
    /// `v`, the running mean of its square.
    pub exp_avg_sq: Vec<F>,
}

/// Adam (L2 weight decay added to the gradient) or AdamW (decoupled weight decay).
#[derive(Clone, Debug)]
pub struct Adam<F> {
    lr: F,
    beta1: F,
    beta2: F,
    eps: F,
    weight_decay: F,
    decoupled: bool,
    step: u64,
    moments: BTreeMap<ParameterKey, Moments<F>>,
}

impl<F: Float> Adam<F> {
    /// Adam with PyTorch's defaults: `betas = (0.9, 0.999)`, `eps = 1e-8`, no decay.
    pub fn new(lr: F) -> Self {
        Self {
            lr,
            beta1: F::from_f64(0.9),
            beta2: F::from_f64(0.999),
            eps: F::from_f64(1e-8),
            weight_decay: F::zero(),
            decoupled: false,
            step: 0,
            moments: BTreeMap::new(),
        }
    }

    /// AdamW with PyTorch's defaults (its `weight_decay` default, 0.01, is not taken:
    /// set it with [`Adam::with_weight_decay`]).
    pub fn adamw(lr: F) -> Self {
        Self {
            decoupled: true,
            ..Self::new(lr)
        }
    }

    /// The moment decay rates `(beta1, beta2)`.
    pub fn with_betas(mut self, beta1: F, beta2: F) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// The term added to the denominator after the square root.
    pub fn with_eps(mut self, eps: F) -> Self {
        self.eps = eps;
        self
    }

    /// Weight decay `lambda` on weight matrices: `2 lambda W` added to the gradient
    /// (Adam), or `W *= 1 - lr lambda` before the step (AdamW).
    pub fn with_weight_decay(mut self, lambda: F) -> Self {
        self.weight_decay = lambda;
        self
    }

    /// Whether this is AdamW (decoupled weight decay).
    pub fn is_decoupled(&self) -> bool {
        self.decoupled
    }

    /// The learning rate.
    pub fn lr(&self) -> F {
        self.lr
    }

    /// Changes the learning rate for later steps (learning-rate schedules).
    pub fn set_lr(&mut self, lr: F) {
        self.lr = lr;
    }

    /// Steps taken so far (`t`).
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The moments of each parameter (empty until the first step).
    pub fn moments(&self) -> &BTreeMap<ParameterKey, Moments<F>> {
        &self.moments
    }

    /// Replaces the step count and the moments (to resume a run).
    pub fn set_state(&mut self, steps: u64, moments: BTreeMap<ParameterKey, Moments<F>>) {
        self.step = steps;
        self.moments = moments;
    }

    /// Applies the gradients stored on `model`'s parameters by its last `backward`.
    pub fn step<M: Module<F> + ?Sized>(&mut self, model: &mut M) {
        self.step += 1;
        // The bias corrections in f64, as PyTorch computes them in Python floats.
        let t = self.step as f64;
        let correction1 = 1.0 - self.beta1.to_f64().powf(t);
        let correction2_sqrt = (1.0 - self.beta2.to_f64().powf(t)).sqrt();
        let constants = StepConstants {
            step_size: F::from_f64(self.lr.to_f64() / correction1),
            correction2_sqrt: F::from_f64(correction2_sqrt),
            one_minus_beta1: F::one() - self.beta1,
            beta2: self.beta2,
            one_minus_beta2: F::one() - self.beta2,
            eps: self.eps,
        };
        let (decay, decoupled, lr) = (self.weight_decay, self.decoupled, self.lr);
        let moments = &mut self.moments;
        model.visit_parameters(&mut |parameter: Parameter<'_, F>| {
            let state = moments.entry(parameter.key).or_default();
            if state.exp_avg.is_empty() {
                state.exp_avg.resize(parameter.value.len(), F::zero());
                state.exp_avg_sq.resize(parameter.value.len(), F::zero());
            }
            assert_eq!(
                state.exp_avg.len(),
                parameter.value.len(),
                "Adam: parameter {} changed size between steps",
                parameter.key
            );
            let weight = parameter.key.kind == ParameterKind::Weight;
            let (l2, shrink) = match (weight, decoupled) {
                (true, false) => (decay + decay, F::one()),
                (true, true) => (F::zero(), F::one() - lr * decay),
                (false, _) => (F::zero(), F::one()),
            };
            constants.apply(
                ArrayViewMut1::from(parameter.value),
                ArrayView1::from(parameter.grad),
                ArrayViewMut1::from(&mut state.exp_avg[..]),
                ArrayViewMut1::from(&mut state.exp_avg_sq[..]),
                l2,
                shrink,
            );
        });
    }
}

/// What one step applies to every element.
#[derive(Clone, Copy, Debug)]
struct StepConstants<F> {
    step_size: F,
    correction2_sqrt: F,
    one_minus_beta1: F,
    beta2: F,
    one_minus_beta2: F,
    eps: F,
}

impl<F: Float> StepConstants<F> {
    /// One fused pass over a parameter `w`, its gradient and its moments; `l2` is added
    /// as `l2 * w` to the gradient, `shrink` multiplies `w` first (AdamW).
    fn apply(
        &self,
        value: ArrayViewMut1<'_, F>,
        grad: ArrayView1<'_, F>,
        exp_avg: ArrayViewMut1<'_, F>,
        exp_avg_sq: ArrayViewMut1<'_, F>,
        l2: F,
        shrink: F,
    ) {
        let c = *self;
        let update = move |w: &mut F, &g: &F, m: &mut F, v: &mut F| {
            if shrink != F::one() {
                *w *= shrink;
            }
            let g = if l2 != F::zero() { g + l2 * *w } else { g };
            *m = *m + c.one_minus_beta1 * (g - *m);
            *v = *v * c.beta2 + c.one_minus_beta2 * g * g;
            let denom = v.sqrt() / c.correction2_sqrt + c.eps;
            *w += (-c.step_size) * *m / denom;
        };
        let parts = share_width(value.len(), TRANSCENDENTAL_ELEMENT).min(MAX_PIECES);
        let slices = (
            value.into_slice(),
            grad.to_slice(),
            exp_avg.into_slice(),
            exp_avg_sq.into_slice(),
        );
        let (Some(mut w), Some(mut g), Some(mut m), Some(mut v)) = slices else {
            unreachable!("Adam's parameters and moments are contiguous vectors")
        };
        let pieces: [Mutex<Option<Piece<'_, F>>>; MAX_PIECES] =
            std::array::from_fn(|_| Mutex::new(None));
        // Elementwise: the pieces' values do not depend on how many there are.
        let len = w.len();
        for (index, piece) in pieces[..parts.max(1)].iter().enumerate() {
            let end = (len * (index + 1) / parts.max(1))
                .next_multiple_of(64)
                .min(len);
            let taken = end - (len - w.len());
            let (w_head, w_tail) = std::mem::take(&mut w).split_at_mut(taken);
            let (g_head, g_tail) = g.split_at(taken);
            let (m_head, m_tail) = std::mem::take(&mut m).split_at_mut(taken);
            let (v_head, v_tail) = std::mem::take(&mut v).split_at_mut(taken);
            *piece.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((w_head, g_head, m_head, v_head));
            (w, g, m, v) = (w_tail, g_tail, m_tail, v_tail);
        }
        share(&pieces[..parts.max(1)], &|(w, g, m, v): Piece<'_, F>| {
            for (((w, g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                update(w, g, m, v);
            }
        });
    }
}

/// A contiguous part of a parameter, its gradient and its two moments.
type Piece<'a, F> = (&'a mut [F], &'a [F], &'a mut [F], &'a mut [F]);

/// The most pieces one step of a parameter is cut into.
const MAX_PIECES: usize = 64;
