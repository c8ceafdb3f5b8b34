//! Plain-loop reference implementations: no BLAS, no rayon, no buffers.
//!
//! This is the algorithmic reference (in the spirit of llm.c's naive matmul): the test
//! oracle for the BLAS path and the baseline of the benchmarks. Every function allocates
//! its result and is written for clarity, not speed.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::float::Float;
use crate::layers::ActivationKind;
use crate::math::argmax;

/// `a: (m, k) x b: (k, n) -> (m, n)`, the textbook i-j-k triple loop.
pub fn matmul_naive<F: Float>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) -> Array2<F> {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(b.nrows(), k, "matmul_naive: inner dimensions differ");
    let mut c = Array2::zeros((m, n));
    for i in 0..m {
        for j in 0..n {
            let mut sum = F::zero();
            for p in 0..k {
                sum += a[[i, p]] * b[[p, j]];
            }
            c[[i, j]] = sum;
        }
    }
    c
}

/// `x: (batch, in), weights: (out, in), bias: (out) -> x W^T + b: (batch, out)`,
/// each output a dot product of contiguous rows (the cache-friendly plain loop).
pub fn linear_forward<F: Float>(
    x: ArrayView2<'_, F>,
    weights: ArrayView2<'_, F>,
    bias: ArrayView1<'_, F>,
) -> Array2<F> {
    let (batch, inputs) = x.dim();
    let outputs = weights.nrows();
    let mut y = Array2::zeros((batch, outputs));
    for n in 0..batch {
        for o in 0..outputs {
            let mut sum = bias[o];
            for i in 0..inputs {
                sum += x[[n, i]] * weights[[o, i]];
            }
            y[[n, o]] = sum;
        }
    }
    y
}

/// `grad_output^T x: (out, in)` for `x: (batch, in)`, `grad_output: (batch, out)`: the
/// weight gradient, accumulated row by row of the batch.
pub fn weight_gradient<F: Float>(
    x: ArrayView2<'_, F>,
    grad_output: ArrayView2<'_, F>,
) -> Array2<F> {
    let (batch, inputs) = x.dim();
    let outputs = grad_output.ncols();
    let mut d_weights = Array2::zeros((outputs, inputs));
    for n in 0..batch {
        for o in 0..outputs {
            let g = grad_output[[n, o]];
            for i in 0..inputs {
                d_weights[[o, i]] += g * x[[n, i]];
            }
        }
    }
    d_weights
}

/// The gradients of a linear layer, as [`linear_backward`] returns them.
#[derive(Clone, Debug)]
pub struct LinearGradients<F> {
    /// `(out, in)`: `grad_output^T x`.
    pub d_weights: Array2<F>,
    /// `(out)`: column sums of `grad_output`.
    pub d_bias: Array1<F>,
    /// `(batch, in)`: `grad_output W`.
    pub grad_input: Array2<F>,
}

/// `x: (batch, in), weights: (out, in), grad_output: (batch, out)` -> the gradients.
pub fn linear_backward<F: Float>(
    x: ArrayView2<'_, F>,
    weights: ArrayView2<'_, F>,
    grad_output: ArrayView2<'_, F>,
) -> LinearGradients<F> {
    let (batch, inputs) = x.dim();
    let outputs = weights.nrows();
    let mut d_bias = Array1::zeros(outputs);
    let mut grad_input = Array2::zeros((batch, inputs));
    for n in 0..batch {
        for o in 0..outputs {
            let g = grad_output[[n, o]];
            d_bias[o] += g;
            for i in 0..inputs {
                grad_input[[n, i]] += g * weights[[o, i]];
            }
        }
    }
    LinearGradients {
        d_weights: weight_gradient(x, grad_output),
        d_bias,
        grad_input,
    }
}

/// `f(x)` elementwise, `(batch, features) -> (batch, features)`.
pub fn activation_forward<F: Float>(kind: ActivationKind, x: ArrayView2<'_, F>) -> Array2<F> {
    x.mapv(|v| match kind {
        ActivationKind::Sigmoid => F::one() / (F::one() + (-v).exp()),
        ActivationKind::Relu => v.max(F::zero()),
        ActivationKind::Tanh => v.tanh(),
        ActivationKind::Identity => v,
    })
}

/// `dL/dx = dL/dy * f'(x)`, with `f'` from the output `y = f(x)`; all `(batch, features)`.
pub fn activation_backward<F: Float>(
    kind: ActivationKind,
    output: ArrayView2<'_, F>,
    grad_output: ArrayView2<'_, F>,
) -> Array2<F> {
    let mut grad_input = Array2::zeros(output.raw_dim());
    for ((index, &y), &g) in output.indexed_iter().zip(grad_output.iter()) {
        let derivative = match kind {
            ActivationKind::Sigmoid => y * (F::one() - y),
            ActivationKind::Relu => {
                if y > F::zero() {
                    F::one()
                } else {
                    F::zero()
                }
            }
            ActivationKind::Tanh => F::one() - y * y,
            ActivationKind::Identity => F::one(),
        };
        grad_input[index] = g * derivative;
    }
    grad_input
}

/// Mean softmax cross-entropy of `logits: (batch, classes)` with `labels: (batch)` and its
/// gradient `(batch, classes)`.
pub fn softmax_cross_entropy<F: Float>(
    logits: ArrayView2<'_, F>,
    labels: ArrayView1<'_, usize>,
) -> (F, Array2<F>) {
    let (batch, classes) = logits.dim();
    let batch_f = F::from_f64(batch as f64);
    let mut loss = F::zero();
    let mut gradient = Array2::zeros((batch, classes));
    for n in 0..batch {
        let mut max = F::neg_infinity();
        for c in 0..classes {
            max = max.max(logits[[n, c]]);
        }
        let mut sum = F::zero();
        for c in 0..classes {
            sum += (logits[[n, c]] - max).exp();
        }
        let log_sum_exp = max + sum.ln();
        loss += log_sum_exp - logits[[n, labels[n]]];
        for c in 0..classes {
            let p = (logits[[n, c]] - log_sum_exp).exp();
            let target = if c == labels[n] { F::one() } else { F::zero() };
            gradient[[n, c]] = (p - target) / batch_f;
        }
    }
    (loss / batch_f, gradient)
}

/// Mean (over the batch) summed squared error and its gradient, `(batch, outputs)`.
pub fn mean_squared_error<F: Float>(
    prediction: ArrayView2<'_, F>,
    target: ArrayView2<'_, F>,
) -> (F, Array2<F>) {
    let batch_f = F::from_f64(prediction.nrows() as f64);
    let mut loss = F::zero();
    let mut gradient = Array2::zeros(prediction.raw_dim());
    for ((index, &p), &t) in prediction.indexed_iter().zip(target.iter()) {
        loss += (p - t) * (p - t);
        gradient[index] = F::from_f64(2.0) * (p - t) / batch_f;
    }
    (loss / batch_f, gradient)
}

/// A multilayer perceptron trained with plain loops only: linear layers with one
/// activation kind between them and softmax cross-entropy on top.
#[derive(Clone, Debug)]
pub struct ReferenceMlp<F> {
    /// `(out, in)` per linear layer.
    pub weights: Vec<Array2<F>>,
    /// `(out)` per linear layer.
    pub biases: Vec<Array1<F>>,
    /// The activation between linear layers.
    pub activation: ActivationKind,
}

impl<F: Float> ReferenceMlp<F> {
    /// Every layer's input, then the logits, for `x: (batch, in)`.
    fn activations(&self, x: ArrayView2<'_, F>) -> Vec<Array2<F>> {
        let mut activations = vec![x.to_owned()];
        for (index, (weights, bias)) in self.weights.iter().zip(&self.biases).enumerate() {
            let pre = linear_forward(activations[index].view(), weights.view(), bias.view());
            let is_last = index + 1 == self.weights.len();
            activations.push(if is_last {
                pre
            } else {
                activation_forward(self.activation, pre.view())
            });
        }
        activations
    }

    /// Logits `(batch, classes)` for `x: (batch, in)`.
    pub fn logits(&self, x: ArrayView2<'_, F>) -> Array2<F> {
        self.activations(x).pop().expect("at least the input")
    }

    /// Predicted class per row of `x: (batch, in)`.
    pub fn predict(&self, x: ArrayView2<'_, F>) -> Array1<usize> {
        let logits = self.logits(x);
        logits
            .rows()
            .into_iter()
            .map(|row| argmax(row.iter().copied()))
            .collect()
    }

    /// The mean loss of the batch `x: (batch, in)`, `labels: (batch)` and the gradients
    /// of every linear layer (`d_weights`, `d_bias`; `grad_input` of the layer's input).
    pub fn gradients(
        &self,
        x: ArrayView2<'_, F>,
        labels: ArrayView1<'_, usize>,
    ) -> (F, Vec<LinearGradients<F>>) {
        let activations = self.activations(x);
        let logits = activations.last().expect("at least the input");
        let (loss, mut grad) = softmax_cross_entropy(logits.view(), labels);
        let mut gradients = Vec::with_capacity(self.weights.len());
        for index in (0..self.weights.len()).rev() {
            let layer = linear_backward(
                activations[index].view(),
                self.weights[index].view(),
                grad.view(),
            );
            if index > 0 {
                grad = activation_backward(
                    self.activation,
                    activations[index].view(),
                    layer.grad_input.view(),
                );
            }
            gradients.push(layer);
        }
        gradients.reverse();
        (loss, gradients)
    }

    /// One plain gradient-descent step (`w -= lr * dw`) on the batch `x: (batch, in)`,
    /// `labels: (batch)`; returns the batch's mean loss before the step.
    pub fn train_batch(
        &mut self,
        x: ArrayView2<'_, F>,
        labels: ArrayView1<'_, usize>,
        learning_rate: F,
    ) -> F {
        let (loss, gradients) = self.gradients(x, labels);
        for (index, layer) in gradients.iter().enumerate() {
            self.weights[index].scaled_add(-learning_rate, &layer.d_weights);
            self.biases[index].scaled_add(-learning_rate, &layer.d_bias);
        }
        loss
    }
}

/// `torch.optim.SGD` in plain loops, with nabla's weight decay: `g' = g + 2 lambda w` on
/// weight matrices only; with momentum `mu`, `v = g'` on the first step and
/// `v = mu v + g'` after, and the step direction `v` (or `g' + mu v` with Nesterov);
/// `w -= lr * direction`.
#[derive(Clone, Debug)]
pub struct ReferenceSgd<F> {
    /// Learning rate.
    pub lr: F,
    /// Momentum `mu` (0: none).
    pub momentum: F,
    /// L2 weight decay `lambda`.
    pub weight_decay: F,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Momentum buffers `(weights, bias)` per layer, after the first step.
    pub velocities: Option<Vec<(Array2<F>, Array1<F>)>>,
}

impl<F: Float> ReferenceSgd<F> {
    /// SGD without momentum or decay.
    pub fn new(lr: F) -> Self {
        Self {
            lr,
            momentum: F::zero(),
            weight_decay: F::zero(),
            nesterov: false,
            velocities: None,
        }
    }

    /// Applies `gradients` (from [`ReferenceMlp::gradients`]) to `model`.
    pub fn step(&mut self, model: &mut ReferenceMlp<F>, gradients: &[LinearGradients<F>]) {
        let first_step = self.velocities.is_none();
        let velocities = self.velocities.get_or_insert_with(|| {
            gradients
                .iter()
                .map(|g| {
                    (
                        Array2::zeros(g.d_weights.raw_dim()),
                        Array1::zeros(g.d_bias.len()),
                    )
                })
                .collect()
        });
        let decay = self.weight_decay + self.weight_decay;
        for (index, layer) in gradients.iter().enumerate() {
            let (velocity_w, velocity_b) = &mut velocities[index];
            let weights = &mut model.weights[index];
            for ((w, &g), v) in weights
                .iter_mut()
                .zip(layer.d_weights.iter())
                .zip(velocity_w.iter_mut())
            {
                let g = g + decay * *w;
                *w -= self.lr * momentum_direction(self.momentum, self.nesterov, g, v, first_step);
            }
            let biases = &mut model.biases[index];
            for ((b, &g), v) in biases
                .iter_mut()
                .zip(layer.d_bias.iter())
                .zip(velocity_b.iter_mut())
            {
                *b -= self.lr * momentum_direction(self.momentum, self.nesterov, g, v, first_step);
            }
        }
    }
}

/// The SGD step direction for gradient `g`, updating the momentum buffer `v`.
fn momentum_direction<F: Float>(
    momentum: F,
    nesterov: bool,
    g: F,
    v: &mut F,
    first_step: bool,
) -> F {
    if momentum == F::zero() {
        return g;
    }
    *v = if first_step { g } else { momentum * *v + g };
    if nesterov {
        g + momentum * *v
    } else {
        *v
    }
}

/// `torch.optim.Adam` / `AdamW` in plain loops, with nabla's weight decay on weight
/// matrices only: `g + 2 lambda w` (Adam) or `w (1 - lr lambda)` first (AdamW).
#[derive(Clone, Debug)]
pub struct ReferenceAdam {
    /// Learning rate.
    pub lr: f64,
    /// First moment decay.
    pub beta1: f64,
    /// Second moment decay.
    pub beta2: f64,
    /// Added after the square root.
    pub eps: f64,
    /// Weight decay `lambda`.
    pub weight_decay: f64,
    /// AdamW: decoupled decay.
    pub decoupled: bool,
    /// Steps taken.
    pub step: i32,
    /// `(m, v)` of each layer's weights and biases, after the first step.
    pub moments: Vec<[(Array2<f64>, Array2<f64>); 2]>,
}

impl ReferenceAdam {
    /// Adam with PyTorch's defaults.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            step: 0,
            moments: Vec::new(),
        }
    }

    /// Applies `gradients` (from [`ReferenceMlp::gradients`]) to `model`.
    pub fn step(&mut self, model: &mut ReferenceMlp<f64>, gradients: &[LinearGradients<f64>]) {
        self.step += 1;
        if self.moments.is_empty() {
            for layer in gradients {
                let zeros_w = Array2::zeros(layer.d_weights.raw_dim());
                let zeros_b = Array2::zeros((1, layer.d_bias.len()));
                self.moments
                    .push([(zeros_w.clone(), zeros_w), (zeros_b.clone(), zeros_b)]);
            }
        }
        let t = self.step;
        let constants = AdamConstants {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            correction1: 1.0 - self.beta1.powi(t),
            correction2: 1.0 - self.beta2.powi(t),
        };
        let (decoupled, shrink, decay) = (
            self.decoupled,
            1.0 - self.lr * self.weight_decay,
            2.0 * self.weight_decay,
        );
        for (index, layer) in gradients.iter().enumerate() {
            let [(m_w, v_w), (m_b, v_b)] = &mut self.moments[index];
            let weights = model.weights[index].iter_mut().zip(layer.d_weights.iter());
            for ((w, &g), (m, v)) in weights.zip(m_w.iter_mut().zip(v_w.iter_mut())) {
                let g = if decoupled {
                    *w *= shrink;
                    g
                } else {
                    g + decay * *w
                };
                *w = constants.element(*w, g, m, v);
            }
            let biases = model.biases[index].iter_mut().zip(layer.d_bias.iter());
            for ((b, &g), (m, v)) in biases.zip(m_b.iter_mut().zip(v_b.iter_mut())) {
                *b = constants.element(*b, g, m, v);
            }
        }
    }
}

/// What one Adam step applies to every element.
struct AdamConstants {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    correction1: f64,
    correction2: f64,
}

impl AdamConstants {
    /// One element of an Adam step, from the published formulas (plain
    /// `m = b1 m + (1 - b1) g`, `m_hat = m / (1 - b1^t)`).
    fn element(&self, w: f64, g: f64, m: &mut f64, v: &mut f64) -> f64 {
        *m = self.beta1 * *m + (1.0 - self.beta1) * g;
        *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
        let m_hat = *m / self.correction1;
        let v_hat = *v / self.correction2;
        w - self.lr * m_hat / (v_hat.sqrt() + self.eps)
    }
}
