//! Elementwise activations: `y = f(x)`, `dL/dx = dL/dy * f'(x)`, with `f'` written in
//! terms of the output `y` (so only the output is kept for `backward`).
//!
//! Shapes: `x, y, dL/dy, dL/dx: (batch, features)`. Large batches are split across
//! rayon's pool; small ones run serially (see [`crate::threads`]).
//!
//! [`ActivationKind`] is the one list of activations: its name (command line and model
//! files), its cost, `f` and `f'` are each one `match` below, and everything else (the
//! layer, the network builder, the model files) goes through it. Adding an activation is
//! one enum arm with its formulas here, plus its plain-loop oracle in `reference.rs`
//! (which the compiler asks for) and its tests.

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use crate::buffer::Buffer;
use crate::float::Float;
use crate::module::Module;
use crate::names::UnknownName;
use crate::threads::{worth_parallel, CHEAP_ELEMENT, TRANSCENDENTAL_ELEMENT};

/// Declares [`ActivationKind`] with its names, costs and the specialising dispatch, so
/// that the list of activations is written once (the formulas are the two `match`es in
/// `impl ActivationKind` below).
macro_rules! activation_kinds {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, cost $cost:expr;)+) => {
        /// Which elementwise activation a layer applies.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ActivationKind {
            $($(#[$doc])* $variant,)+
        }

        impl ActivationKind {
            /// Every kind, in the order the command line lists them.
            pub const ALL: [ActivationKind; [$($name),+].len()] = [$(Self::$variant),+];

            /// The lower-case name the command line and the model files use.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// Relative cost per element, for the serial/parallel choice.
            fn cost(self) -> usize {
                match self {
                    $(Self::$variant => $cost,)+
                }
            }
        }

        /// Runs `kernel` compiled for `kind` alone: its loop sees the kind as a constant,
        /// so the `match` in the formulas folds away and the loop vectorises.
        fn specialised(kind: ActivationKind, kernel: impl Kernel) {
            match kind {
                $(ActivationKind::$variant => kernel.run::<{ ActivationKind::$variant as u8 }>(),)+
            }
        }
    };
}

activation_kinds! {
    /// The logistic function `1 / (1 + e^-x)`, computed without overflow for any `x`.
    Sigmoid = "sigmoid", cost TRANSCENDENTAL_ELEMENT;
    /// `max(0, x)`, with subgradient 0 at 0.
    Relu = "relu", cost CHEAP_ELEMENT;
    /// The hyperbolic tangent.
    Tanh = "tanh", cost TRANSCENDENTAL_ELEMENT;
    /// `f(x) = x` (scikit-learn's `'identity'`): a linear hidden layer.
    Identity = "identity", cost CHEAP_ELEMENT;
}

impl ActivationKind {
    /// `f(x)`.
    #[inline(always)]
    pub fn value<F: Float>(self, x: F) -> F {
        match self {
            // 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below, both from e = e^-|x|
            // (never overflows), written as selects so that the loops vectorise.
            Self::Sigmoid => {
                let e = (-x.abs()).exp_non_positive();
                let numerator = if x >= F::zero() { F::one() } else { e };
                numerator / (F::one() + e)
            }
            // NaN stays NaN (as NumPy's `maximum` and PyTorch's `relu`).
            Self::Relu => {
                if x > F::zero() || x.is_nan() {
                    x
                } else {
                    F::zero()
                }
            }
            Self::Tanh => x.tanh(),
            Self::Identity => x,
        }
    }

    /// `f'(x)` given `y = f(x)`.
    #[inline(always)]
    pub fn derivative_from_output<F: Float>(self, y: F) -> F {
        match self {
            Self::Sigmoid => y * (F::one() - y),
            // Zero where the output is zero (a NaN passes its gradient on, as
            // scikit-learn's `delta[Z == 0] = 0`).
            Self::Relu => {
                if y > F::zero() || y.is_nan() {
                    F::one()
                } else {
                    F::zero()
                }
            }
            Self::Tanh => F::one() - y * y,
            Self::Identity => F::one(),
        }
    }
}

impl fmt::Display for ActivationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ActivationKind {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        UnknownName::find("activation", name, Self::ALL, Self::name)
    }
}

/// An activation layer: applies its [`ActivationKind`] elementwise and keeps the output
/// for `backward`.
#[derive(Clone, Debug)]
pub struct Activation<F> {
    kind: ActivationKind,
    output: Buffer<F>,
    grad_input: Buffer<F>,
}

impl<F: Float> Activation<F> {
    /// A layer of `kind` with empty buffers (sized on the first `forward`).
    pub fn new(kind: ActivationKind) -> Self {
        Self {
            kind,
            output: Buffer::new(),
            grad_input: Buffer::new(),
        }
    }

    /// The function this layer applies.
    pub fn kind(&self) -> ActivationKind {
        self.kind
    }
}

/// An elementwise loop compiled once per kind: `K` is the kind's discriminant, and
/// `kind::<K>()` its constant value.
trait Kernel {
    fn run<const K: u8>(self);
}

/// The kind whose discriminant is `K`, as a constant.
const fn kind<const K: u8>() -> ActivationKind {
    ActivationKind::ALL[K as usize]
}

/// `y = f(x)`, all `(batch, features)`.
struct Forward<'a, F> {
    x: ArrayView2<'a, F>,
    y: ArrayViewMut2<'a, F>,
    parallel: bool,
}

impl<F: Float> Kernel for Forward<'_, F> {
    fn run<const K: u8>(self) {
        let zip = Zip::from(self.y).and(&self.x);
        if self.parallel {
            zip.par_for_each(|y, &x| *y = const { kind::<K>() }.value(x));
        } else {
            zip.for_each(|y, &x| *y = const { kind::<K>() }.value(x));
        }
    }
}

/// `dL/dx = dL/dy * f'(x)` from `y = f(x)`, all `(batch, features)`.
struct Backward<'a, F> {
    y: ArrayView2<'a, F>,
    grad_output: ArrayView2<'a, F>,
    grad_input: ArrayViewMut2<'a, F>,
    parallel: bool,
}

impl<F: Float> Kernel for Backward<'_, F> {
    fn run<const K: u8>(self) {
        let zip = Zip::from(self.grad_input)
            .and(&self.grad_output)
            .and(&self.y);
        if self.parallel {
            zip.par_for_each(|dx, &dy, &y| {
                *dx = dy * const { kind::<K>() }.derivative_from_output(y)
            });
        } else {
            zip.for_each(|dx, &dy, &y| *dx = dy * const { kind::<K>() }.derivative_from_output(y));
        }
    }
}

/// `x = f(x)` in place, `(batch, features)`, on the calling thread.
struct ForwardInPlace<'a, F> {
    x: ArrayViewMut2<'a, F>,
}

impl<F: Float> Kernel for ForwardInPlace<'_, F> {
    fn run<const K: u8>(self) {
        Zip::from(self.x).for_each(|x| *x = const { kind::<K>() }.value(*x));
    }
}

/// `dL/dx = dL/dy * f'(x)` from `y = f(x)`, in place over `dL/dy`, on the calling thread.
struct BackwardInPlace<'a, F> {
    y: ArrayView2<'a, F>,
    grad: ArrayViewMut2<'a, F>,
}

impl<F: Float> Kernel for BackwardInPlace<'_, F> {
    fn run<const K: u8>(self) {
        Zip::from(self.grad)
            .and(&self.y)
            .for_each(|g, &y| *g *= const { kind::<K>() }.derivative_from_output(y));
    }
}

impl ActivationKind {
    /// `x = f(x)` elementwise over `x: (batch, features)`, in place and on the calling
    /// thread (for the per-core paths, whose parts are already one per core). The values
    /// equal the layer's `forward` bit for bit.
    pub(crate) fn apply_in_place<F: Float>(self, x: ArrayViewMut2<'_, F>) {
        specialised(self, ForwardInPlace { x });
    }

    /// `grad = grad * f'(x)` elementwise from the outputs `y = f(x)`, both `(batch,
    /// features)`, in place and on the calling thread; equals the layer's `backward`.
    pub(crate) fn scale_by_derivative<F: Float>(
        self,
        grad: ArrayViewMut2<'_, F>,
        y: ArrayView2<'_, F>,
    ) {
        assert_eq!(grad.dim(), y.dim(), "scale_by_derivative: shapes differ");
        specialised(self, BackwardInPlace { y, grad });
    }
}

impl<F: Float> Module<F> for Activation<F> {
    fn forward(&mut self, input: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // x: (batch, features) -> y: (batch, features)
        let output = self.output.resize(input.nrows(), input.ncols());
        let parallel = worth_parallel(input.len(), self.kind.cost());
        specialised(
            self.kind,
            Forward {
                x: input,
                y: output,
                parallel,
            },
        );
        self.output.view()
    }

    fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> ArrayView2<'_, F> {
        // dL/dy: (batch, features), y: (batch, features) -> dL/dx: (batch, features)
        let output = self.output.view();
        assert_eq!(
            grad_output.dim(),
            output.dim(),
            "{} backward: grad_output shape differs from the last forward's output",
            self.kind
        );
        let grad_input = self.grad_input.resize(output.nrows(), output.ncols());
        let parallel = worth_parallel(output.len(), self.kind.cost());
        specialised(
            self.kind,
            Backward {
                y: output,
                grad_output,
                grad_input,
                parallel,
            },
        );
        self.grad_input.view()
    }
}
