//! Gradient descent with optional momentum and L2 weight decay.
//!
//! For every parameter `w` with gradient `g` (from the last `backward`):
//! `g' = g + 2 * lambda * w` for weight matrices only (biases are never decayed), then
//! `v = mu * v + g'` and `w -= learning_rate * v` (with `mu = 0`, plain `w -= lr * g'`).

use crate::module::{Module, Parameter, ParameterKind};
use crate::Float;

/// The optimizer of the assignment (plain batch gradient descent) and its extensions.
#[derive(Clone, Debug)]
pub struct GradientDescent<F> {
    learning_rate: F,
    weight_decay: F,
    momentum: F,
    velocities: Vec<Vec<F>>,
}

impl<F: Float> GradientDescent<F> {
    /// Plain gradient descent: `w -= learning_rate * dL/dw`.
    pub fn new(learning_rate: F) -> Self {
        Self {
            learning_rate,
            weight_decay: F::zero(),
            momentum: F::zero(),
            velocities: Vec::new(),
        }
    }

    /// Adds `2 * lambda * W` to the gradient of every weight matrix (L2 regularisation
    /// of `lambda * sum W^2`); biases are untouched.
    pub fn with_weight_decay(mut self, lambda: F) -> Self {
        self.weight_decay = lambda;
        self
    }

    /// Classical (heavy-ball) momentum `mu` in `[0, 1)`.
    pub fn with_momentum(mut self, mu: F) -> Self {
        self.momentum = mu;
        self
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> F {
        self.learning_rate
    }

    /// Applies the gradients stored on `model`'s layers by its last `backward`.
    pub fn step<M: Module<F> + ?Sized>(&mut self, model: &mut M) {
        let (learning_rate, weight_decay, momentum) =
            (self.learning_rate, self.weight_decay, self.momentum);
        let use_velocity = momentum != F::zero();
        let velocities = &mut self.velocities;
        let mut index = 0;
        model.visit_parameters(&mut |parameter: Parameter<'_, F>| {
            let decay = match parameter.kind {
                ParameterKind::Weight => weight_decay + weight_decay,
                ParameterKind::Bias => F::zero(),
            };
            if use_velocity {
                if velocities.len() <= index {
                    velocities.push(vec![F::zero(); parameter.value.len()]);
                }
                let velocity = &mut velocities[index];
                for ((w, &g), v) in parameter
                    .value
                    .iter_mut()
                    .zip(parameter.gradient)
                    .zip(velocity.iter_mut())
                {
                    *v = momentum * *v + g + decay * *w;
                    *w -= learning_rate * *v;
                }
            } else if decay != F::zero() {
                for (w, &g) in parameter.value.iter_mut().zip(parameter.gradient) {
                    *w -= learning_rate * (g + decay * *w);
                }
            } else {
                for (w, &g) in parameter.value.iter_mut().zip(parameter.gradient) {
                    *w -= learning_rate * g;
                }
            }
            index += 1;
        });
    }
}
