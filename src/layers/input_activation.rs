//! The activations whose derivative needs the input (PyTorch's `nn.LeakyReLU`,
//! `nn.GELU`, `nn.SiLU`, `nn.ELU`): the layer keeps `x` for `backward`. The assignment's
//! four (sigmoid, ReLU, tanh, identity) are [`crate::layers::Activation`], which keeps
//! only the output.
//!
//! Shapes: `x, y, dL/dy, dL/dx: (batch, features)`. The formulas, value and derivative,
//! are PyTorch's CPU kernels written out (same operations in the same order), so that
//! f64 results agree with PyTorch to rounding:
//!
//! | kind        | `y = f(x)`                                  | `dL/dx`                                       |
//! |-------------|---------------------------------------------|-----------------------------------------------|
//! | LeakyReLU   | `x > 0 ? x : slope x`                       | `x > 0 ? dy : dy slope`                       |
//! | GELU        | `x 0.5 (1 + erf(x / sqrt 2))`               | `dy (Phi(x) + x e^(-x^2/2) / sqrt(2 pi))`     |
//! | GELU tanh   | `0.5 x (1 + tanh(u))`, `u = sqrt(2/pi) (x + 0.044715 x^3)` | `dy (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx)` |
//! | SiLU        | `x / (1 + e^-x)`                            | `dy s (1 + x (1 - s))`, `s = sigmoid(x)`      |
//! | ELU         | `x > 0 ? x : alpha (e^x - 1)`               | `x <= 0 ? dy alpha e^x : dy`                  |
//!
//! NaN inputs give NaN outputs. Large batches are split across rayon's pool, small ones
//! run serially (see [`crate::threads`]); each element is computed alone, so the results
//! do not depend on the split.

use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI, SQRT_2};

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use crate::buffer::Buffer;
use crate::float::Float;
use crate::module::Module;
use crate::threads::{worth_parallel, CHEAP_ELEMENT, TRANSCENDENTAL_ELEMENT};

/// Which function, with PyTorch's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InputActivationKind {
    /// `x` for `x > 0`, `negative_slope * x` otherwise.
    LeakyRelu {
        /// The slope below zero (PyTorch's default 0.01).
        negative_slope: f64,
    },
    /// `x * Phi(x)` with the normal CDF `Phi`; with `tanh`, PyTorch's
    /// `approximate='tanh'`: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    Gelu {
        /// Whether the tanh approximation is used.
        tanh: bool,
    },
    /// `x * sigmoid(x)`.
    Silu,
    /// `x` for `x > 0`, `alpha * (e^x - 1)` otherwise.
    Elu {
        /// PyTorch's default 1.0.
        alpha: f64,
    },
}

impl InputActivationKind {
    /// Relative cost per element, for the serial/parallel choice.
    fn cost(self) -> usize {
        match self {
            Self::LeakyRelu { .. } => CHEAP_ELEMENT,
            Self::Gelu { .. } | Self::Silu | Self::Elu { .. } => TRANSCENDENTAL_ELEMENT,
        }
    }
}

/// An activation layer of an [`InputActivationKind`].
#[derive(Clone, Debug)]
pub struct InputActivation<F> {
    kind: InputActivationKind,
    /// `x: (batch, features)` of the last `forward`.
    input: Buffer<F>,
    output: Buffer<F>,
    grad_input: Buffer<F>,
}

impl<F: Float> InputActivation<F> {
    /// A layer of `kind` with empty buffers.
    pub fn new(kind: InputActivationKind) -> Self {
        Self {
            kind,
            input: Buffer::new(),
            output: Buffer::new(),
            grad_input: Buffer::new(),
        }
    }

    /// The function this layer applies.
    pub fn kind(&self) -> InputActivationKind {
        self.kind
    }
}

impl<F: Float> Module<F> for InputActivation<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // x: (batch, features) -> y: (batch, features); x is kept for backward
        let (rows, cols) = input.dim();
        let parallel = worth_parallel(input.len(), self.kind.cost());
        let kept = self.input.resize(rows, cols);
        let output = self.output.resize(rows, cols);
        forward_kernel(self.kind, input, kept, output, parallel);
        self.output.view()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // dL/dy: (batch, features), x: (batch, features) -> dL/dx: (batch, features)
        let input = self.input.view();
        assert_eq!(
            grad_output.dim(),
            input.dim(),
            "{:?} backward: grad_output shape differs from the last forward's output",
            self.kind
        );
        let parallel = worth_parallel(input.len(), self.kind.cost());
        let grad_input = self.grad_input.resize(input.nrows(), input.ncols());
        backward_kernel(self.kind, input, grad_output, grad_input, parallel);
        self.grad_input.view()
    }
}

/// `y = f(x)` and `kept = x`, all `(batch, features)`, with `f` chosen once, outside
/// the loop.
fn forward_kernel<F: Float>(
    kind: InputActivationKind,
    x: ArrayView2<'_, F>,
    kept: ArrayViewMut2<'_, F>,
    y: ArrayViewMut2<'_, F>,
    parallel: bool,
) {
    match kind {
        InputActivationKind::LeakyRelu { negative_slope } => {
            let slope = F::from_f64(negative_slope);
            map_forward(x, kept, y, parallel, |x| leaky_relu(x, slope));
        }
        InputActivationKind::Gelu { tanh: false } => map_forward(x, kept, y, parallel, gelu),
        InputActivationKind::Gelu { tanh: true } => map_forward(x, kept, y, parallel, gelu_tanh),
        InputActivationKind::Silu => map_forward(x, kept, y, parallel, silu),
        InputActivationKind::Elu { alpha } => {
            let alpha = F::from_f64(alpha);
            map_forward(x, kept, y, parallel, |x| elu(x, alpha));
        }
    }
}

/// `dx = dL/dy * f'(x)`, all `(batch, features)`, with `f'` chosen once.
fn backward_kernel<F: Float>(
    kind: InputActivationKind,
    x: ArrayView2<'_, F>,
    dy: ArrayView2<'_, F>,
    dx: ArrayViewMut2<'_, F>,
    parallel: bool,
) {
    match kind {
        InputActivationKind::LeakyRelu { negative_slope } => {
            let slope = F::from_f64(negative_slope);
            map_backward(x, dy, dx, parallel, |x, dy| leaky_relu_grad(x, dy, slope));
        }
        InputActivationKind::Gelu { tanh: false } => map_backward(x, dy, dx, parallel, gelu_grad),
        InputActivationKind::Gelu { tanh: true } => {
            map_backward(x, dy, dx, parallel, gelu_tanh_grad)
        }
        InputActivationKind::Silu => map_backward(x, dy, dx, parallel, silu_grad),
        InputActivationKind::Elu { alpha } => {
            let alpha = F::from_f64(alpha);
            map_backward(x, dy, dx, parallel, |x, dy| elu_grad(x, dy, alpha));
        }
    }
}

/// `y = f(x)` and `kept = x` elementwise, on the pool if `parallel`.
fn map_forward<F: Float>(
    x: ArrayView2<'_, F>,
    kept: ArrayViewMut2<'_, F>,
    y: ArrayViewMut2<'_, F>,
    parallel: bool,
    f: impl Fn(F) -> F + Sync + Send,
) {
    let zip = Zip::from(y).and(kept).and(x);
    let body = |y: &mut F, kept: &mut F, &x: &F| {
        *kept = x;
        *y = f(x);
    };
    if parallel {
        zip.par_for_each(body);
    } else {
        zip.for_each(body);
    }
}

/// `dx = grad(x, dy)` elementwise, on the pool if `parallel`.
fn map_backward<F: Float>(
    x: ArrayView2<'_, F>,
    dy: ArrayView2<'_, F>,
    dx: ArrayViewMut2<'_, F>,
    parallel: bool,
    grad: impl Fn(F, F) -> F + Sync + Send,
) {
    let zip = Zip::from(dx).and(x).and(dy);
    let body = |dx: &mut F, &x: &F, &dy: &F| *dx = grad(x, dy);
    if parallel {
        zip.par_for_each(body);
    } else {
        zip.for_each(body);
    }
}

/// GELU tanh's `sqrt(2 / pi)` (PyTorch's `kBeta = M_SQRT2 * M_2_SQRTPI * 0.5`).
const SQRT_2_OVER_PI: f64 = SQRT_2 * FRAC_2_SQRT_PI * 0.5;
/// GELU tanh's cubic coefficient (PyTorch's `kKappa`).
const GELU_KAPPA: f64 = 0.044715;
/// The normal density's `1 / sqrt(2 pi)` (PyTorch's `M_2_SQRTPI * M_SQRT1_2 * 0.5`).
const INV_SQRT_2PI: f64 = FRAC_2_SQRT_PI * FRAC_1_SQRT_2 * 0.5;

#[inline(always)]
fn c<F: Float>(value: f64) -> F {
    F::from_f64(value)
}

#[inline(always)]
fn leaky_relu<F: Float>(x: F, slope: F) -> F {
    if x > F::zero() {
        x
    } else {
        x * slope
    }
}

#[inline(always)]
fn leaky_relu_grad<F: Float>(x: F, dy: F, slope: F) -> F {
    if x > F::zero() {
        dy
    } else {
        dy * slope
    }
}

#[inline(always)]
fn gelu<F: Float>(x: F) -> F {
    x * c(0.5) * (F::one() + (x * c(FRAC_1_SQRT_2)).erf())
}

#[inline(always)]
fn gelu_grad<F: Float>(x: F, dy: F) -> F {
    let cdf = c::<F>(0.5) * (F::one() + (x * c(FRAC_1_SQRT_2)).erf());
    let pdf = c::<F>(INV_SQRT_2PI) * (x * x * c(-0.5)).exp();
    dy * (cdf + x * pdf)
}

#[inline(always)]
fn gelu_tanh<F: Float>(x: F) -> F {
    let inner = c::<F>(SQRT_2_OVER_PI) * (x + c::<F>(GELU_KAPPA) * (x * x * x));
    c::<F>(0.5) * x * (F::one() + inner.tanh())
}

#[inline(always)]
fn gelu_tanh_grad<F: Float>(x: F, dy: F) -> F {
    let x_sq = x * x;
    let inner = c::<F>(SQRT_2_OVER_PI) * (x + c::<F>(GELU_KAPPA) * (x_sq * x));
    let tanh_inner = inner.tanh();
    let left = c::<F>(0.5) * x;
    let left_derivative = c::<F>(0.5) * (F::one() + tanh_inner);
    let tanh_derivative = F::one() - tanh_inner * tanh_inner;
    let inner_derivative =
        c::<F>(SQRT_2_OVER_PI) * (F::one() + c::<F>(3.0) * c::<F>(GELU_KAPPA) * x_sq);
    dy * (left_derivative + left * tanh_derivative * inner_derivative)
}

#[inline(always)]
fn silu<F: Float>(x: F) -> F {
    x / (F::one() + (-x).exp())
}

#[inline(always)]
fn silu_grad<F: Float>(x: F, dy: F) -> F {
    let sigmoid = F::one() / (F::one() + (-x).exp());
    dy * sigmoid * (F::one() + x * (F::one() - sigmoid))
}

#[inline(always)]
fn elu<F: Float>(x: F, alpha: F) -> F {
    if x > F::zero() {
        x
    } else {
        alpha * x.exp_m1()
    }
}

#[inline(always)]
fn elu_grad<F: Float>(x: F, dy: F, alpha: F) -> F {
    if x <= F::zero() {
        dy * alpha * x.exp()
    } else {
        dy
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::layers::testing;

    /// Seeded inputs in this file's range.
    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        testing::random(rows, cols, -4.0..4.0, seed)
    }

    const KINDS: [InputActivationKind; 6] = [
        InputActivationKind::LeakyRelu {
            negative_slope: 0.01,
        },
        InputActivationKind::LeakyRelu {
            negative_slope: -0.3,
        },
        InputActivationKind::Gelu { tanh: false },
        InputActivationKind::Gelu { tanh: true },
        InputActivationKind::Silu,
        InputActivationKind::Elu { alpha: 1.3 },
    ];

    /// The textbook formulas, one element at a time: the plain-loop oracle.
    fn reference(kind: InputActivationKind, x: f64) -> f64 {
        let pi = std::f64::consts::PI;
        match kind {
            InputActivationKind::LeakyRelu { negative_slope } => {
                if x > 0.0 {
                    x
                } else {
                    negative_slope * x
                }
            }
            InputActivationKind::Gelu { tanh: false } => {
                x * 0.5 * (1.0 + libm::erf(x / 2f64.sqrt()))
            }
            InputActivationKind::Gelu { tanh: true } => {
                0.5 * x * (1.0 + ((2.0 / pi).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
            }
            InputActivationKind::Silu => x * (1.0 / (1.0 + (-x).exp())),
            InputActivationKind::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * (x.exp() - 1.0)
                }
            }
        }
    }

    #[test]
    fn forward_matches_the_plain_formulas() {
        let x = random(7, 5, 1);
        for kind in KINDS {
            let mut layer = InputActivation::<f64>::new(kind);
            let y = layer.forward(x.view()).to_owned();
            for (y, &x) in y.iter().zip(&x) {
                let expected = reference(kind, x);
                assert!(
                    (y - expected).abs() <= 1e-14 * (1.0 + expected.abs()),
                    "{kind:?} at {x}: {y} vs {expected}"
                );
            }
        }
    }

    /// dL/dx of `L = sum(y * r)` against central differences, for every kind.
    #[test]
    fn backward_matches_finite_differences() {
        let x = random(4, 6, 2);
        let r = random(4, 6, 3);
        let loss = |kind, x: &Array2<f64>| {
            let mut layer = InputActivation::<f64>::new(kind);
            (&layer.forward(x.view()) * &r).sum()
        };
        for kind in KINDS {
            let mut layer = InputActivation::<f64>::new(kind);
            layer.forward(x.view());
            let grad = layer.backward(r.view()).to_owned();
            let h = 1e-6;
            for index in 0..x.len() {
                let (i, j) = (index / x.ncols(), index % x.ncols());
                let (mut plus, mut minus) = (x.clone(), x.clone());
                plus[(i, j)] += h;
                minus[(i, j)] -= h;
                let numeric = (loss(kind, &plus) - loss(kind, &minus)) / (2.0 * h);
                assert!(
                    (grad[(i, j)] - numeric).abs() < 1e-8,
                    "{kind:?} at {}: {} vs {numeric}",
                    x[(i, j)],
                    grad[(i, j)]
                );
            }
        }
    }

    #[test]
    fn nan_propagates_and_edges_follow_pytorch() {
        for kind in KINDS {
            let mut layer = InputActivation::<f64>::new(kind);
            let x = Array2::from_shape_vec((1, 3), vec![f64::NAN, 0.0, -800.0]).unwrap();
            let y = layer.forward(x.view()).to_owned();
            assert!(y[(0, 0)].is_nan(), "{kind:?}");
            assert_eq!(y[(0, 1)], 0.0, "{kind:?}");
            assert!(y[(0, 2)].is_finite(), "{kind:?}: {}", y[(0, 2)]);
            let grad = layer.backward(Array2::ones((1, 3)).view()).to_owned();
            assert!(grad[(0, 2)].is_finite(), "{kind:?}: {}", grad[(0, 2)]);
        }
        // At 0: the negative side's slope (PyTorch's `x > 0` / `x <= 0`).
        let mut leaky = InputActivation::<f64>::new(KINDS[0]);
        leaky.forward(Array2::zeros((1, 1)).view());
        assert_eq!(leaky.backward(Array2::ones((1, 1)).view())[(0, 0)], 0.01);
        let mut elu = InputActivation::<f64>::new(KINDS[5]);
        elu.forward(Array2::zeros((1, 1)).view());
        assert_eq!(elu.backward(Array2::ones((1, 1)).view())[(0, 0)], 1.3);
    }

    #[test]
    fn a_smaller_batch_after_a_larger_one_is_computed_afresh() {
        let big = random(9, 4, 4);
        let small = random(3, 4, 5);
        let dy = random(3, 4, 6);
        for kind in KINDS {
            let mut reused = InputActivation::<f64>::new(kind);
            reused.forward(big.view());
            reused.backward(big.view());
            let y = reused.forward(small.view()).to_owned();
            let dx = reused.backward(dy.view()).to_owned();
            let mut fresh = InputActivation::<f64>::new(kind);
            assert_eq!(y, fresh.forward(small.view()));
            assert_eq!(dx, fresh.backward(dy.view()));
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let x = random(5, 6, 7);
        let dy = random(5, 6, 8);
        for kind in KINDS {
            let mut wide = InputActivation::<f64>::new(kind);
            let y64 = wide.forward(x.view()).to_owned();
            let dx64 = wide.backward(dy.view()).to_owned();
            let mut narrow = InputActivation::<f32>::new(kind);
            let y32 = narrow.forward(x.mapv(|v| v as f32).view()).to_owned();
            let dx32 = narrow.backward(dy.mapv(|v| v as f32).view()).to_owned();
            for (a, b) in y32.iter().zip(&y64).chain(dx32.iter().zip(&dx64)) {
                assert!((*a as f64 - b).abs() < 1e-5 * (1.0 + b.abs()), "{kind:?}");
            }
        }
    }

    #[test]
    fn the_parallel_path_equals_the_serial_one() {
        // 300 x 250 elements: past the threshold for every kind.
        let x = random(300, 250, 9);
        let dy = random(300, 250, 10);
        for kind in KINDS {
            let mut serial = InputActivation::<f64>::new(kind);
            let y = serial.forward(x.view()).to_owned();
            let dx = serial.backward(dy.view()).to_owned();
            let (y_par, dx_par) = crate::threads::on_pool(3, || {
                assert!(worth_parallel(x.len(), kind.cost()));
                let mut layer = InputActivation::<f64>::new(kind);
                let y = layer.forward(x.view()).to_owned();
                (y, layer.backward(dy.view()).to_owned())
            });
            assert_eq!(y, y_par, "{kind:?}");
            assert_eq!(dx, dx_par, "{kind:?}");
        }
    }

    /// Outputs and input gradients from PyTorch 2.15 (float64, CPU), made by:
    ///
    /// ```python
    /// import torch
    /// x = torch.tensor([[-3.0, -1.25, -0.5, -1e-3], [0.0, 0.3, 1.7, 4.5]],
    ///                  dtype=torch.float64, requires_grad=True)
    /// dy = torch.tensor([[0.7, -1.1, 2.0, 0.4], [-0.6, 1.5, -0.9, 0.25]], dtype=torch.float64)
    /// names = ["LeakyRelu { negative_slope: 0.01 }", "LeakyRelu { negative_slope: -0.3 }",
    ///          "Gelu { tanh: false }", "Gelu { tanh: true }", "Silu", "Elu { alpha: 1.3 }"]
    /// for name, m in zip(names, [torch.nn.LeakyReLU(0.01), torch.nn.LeakyReLU(-0.3), torch.nn.GELU(),
    ///           torch.nn.GELU(approximate='tanh'), torch.nn.SiLU(), torch.nn.ELU(1.3)]):
    ///     x.grad = None
    ///     y = m(x); y.backward(dy)
    ///     f = lambda t: "[" + ", ".join(repr(v) for v in t.flatten().tolist()) + "]"
    ///     print(f"(InputActivationKind::{name},\n {f(y.detach())},\n {f(x.grad)}),")
    /// ```
    #[test]
    fn matches_pytorch() {
        let x = [-3.0, -1.25, -0.5, -1e-3, 0.0, 0.3, 1.7, 4.5];
        let dy = [0.7, -1.1, 2.0, 0.4, -0.6, 1.5, -0.9, 0.25];
        #[rustfmt::skip]
        let expected: [(InputActivationKind, [f64; 8], [f64; 8]); 6] = [
            (InputActivationKind::LeakyRelu { negative_slope: 0.01 },
             [-0.03, -0.0125, -0.005, -1e-05, 0.0, 0.3, 1.7, 4.5],
             [0.006999999999999999, -0.011000000000000001, 0.02, 0.004, -0.006, 1.5, -0.9, 0.25]),
            (InputActivationKind::LeakyRelu { negative_slope: -0.3 },
             [0.8999999999999999, 0.375, 0.15, 0.0003, -0.0, 0.3, 1.7, 4.5],
             [-0.21, 0.33, -0.6, -0.12, 0.18, 1.5, -0.9, 0.25]),
            (InputActivationKind::Gelu { tanh: false },
             [-0.00404969409489031, -0.13206221708356905, -0.15426876936299344, -0.000499601057786089, 0.0, 0.1853734266566858, 1.6242387133104768, 4.4999847104709385],
             [-0.008361953042928744, 0.13492774137636437, 0.26500975068767424, 0.19968084628206345, -0.3, 1.0984916502406648, -1.0037861719039485, 0.2500171322904641]),
            (InputActivationKind::Gelu { tanh: true },
             [-0.0036373920817729943, -0.13228579703028542, -0.15428599017485606, -0.000499601057786418, 0.0, 0.18537092354275922, 1.624105895551156, 4.499994863262588],
             [-0.008108916641678753, 0.13474189547461352, 0.2652601929307153, 0.19968084628259, -0.3, 1.0984431774582029, -1.0043231683073446, 0.25000733056761065]),
            (InputActivationKind::Silu,
             [-0.14227761953270035, -0.27837517353163604, -0.1887703343990727, -0.0004997500000208334, 0.0, 0.1723327550434977, 1.437409049357991, 4.450558758162331],
             [-0.061672874210618726, -0.006951070593156328, 0.5200776253946964, 0.1998000000333333, -0.3, 0.9716700154783242, -0.960808054283117, 0.25947777277985506]),
            (InputActivationKind::Elu { alpha: 1.3 },
             [-1.235276811121777, -0.9275437640817529, -0.5115101423735766, -0.001299350216612511, 0.0, 0.3, 1.7, 4.5],
             [0.04530623221475619, -0.4097018595100719, 1.5769797152528469, 0.519480259913355, -0.78, 1.5, -0.9, 0.25]),
        ];
        for (kind, y_torch, dx_torch) in expected {
            let mut layer = InputActivation::<f64>::new(kind);
            let x = Array2::from_shape_vec((2, 4), x.to_vec()).unwrap();
            let y = layer.forward(x.view()).to_owned();
            let dy = Array2::from_shape_vec((2, 4), dy.to_vec()).unwrap();
            let dx = layer.backward(dy.view()).to_owned();
            for i in 0..8 {
                let (y, dx) = (y.as_slice().unwrap()[i], dx.as_slice().unwrap()[i]);
                assert!(
                    (y - y_torch[i]).abs() <= 1e-12,
                    "{kind:?} y[{i}]: {y} vs {}",
                    y_torch[i]
                );
                assert!(
                    (dx - dx_torch[i]).abs() <= 1e-12,
                    "{kind:?} dx[{i}]: {dx} vs {}",
                    dx_torch[i]
                );
            }
        }
    }
}
