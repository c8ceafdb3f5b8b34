//! Deterministic, seeded weight initialisation.
//!
//! Weights are drawn in `f64` from a ChaCha8 stream (portable and version-stable), then
//! rounded to the model's float type, so the same seed gives bit-identical weights on
//! every run and thread count, and an `f32` model starts from the rounded `f64` one.

use std::fmt;
use std::str::FromStr;

use ndarray::Array2;
use ndarray_linalg::QR;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::float::Float;
use crate::names::UnknownName;
use crate::threads::with_one_blas_thread;

/// The assignment's seed, used when none is given.
pub const DEFAULT_SEED: u64 = 10701;

/// The random stream every initialiser draws from, seeded by [`rng`].
pub type InitRng = ChaCha8Rng;

/// A seeded random stream for initialisation.
pub fn rng(seed: u64) -> InitRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// How a `(out, in)` weight matrix is initialised (biases always start at zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Init {
    /// All zeros: shows the symmetry problem (every hidden unit stays identical).
    Zeros,
    /// Uniform in `[-1/sqrt(in), 1/sqrt(in))`, the default.
    #[default]
    Uniform,
    /// Xavier/Glorot uniform: `[-sqrt(6/(in+out)), sqrt(6/(in+out)))`.
    Xavier,
    /// He/Kaiming normal: `N(0, 2/in)`.
    He,
    /// A (semi-)orthogonal matrix: the Q of a QR factorisation of a Gaussian matrix,
    /// signs fixed by R's diagonal.
    Orthogonal,
}

impl Init {
    /// Every scheme, in the order the command line lists them.
    pub const ALL: [Init; 5] = [
        Self::Zeros,
        Self::Uniform,
        Self::Xavier,
        Self::He,
        Self::Orthogonal,
    ];

    /// The lower-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Zeros => "zeros",
            Self::Uniform => "uniform",
            Self::Xavier => "xavier",
            Self::He => "he",
            Self::Orthogonal => "orthogonal",
        }
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Init {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        UnknownName::find("init", name, Self::ALL, Self::name)
    }
}

/// A `(out_features, in_features)` weight matrix drawn by `init` from `rng`.
pub fn weights<F: Float, R: Rng + ?Sized>(
    init: Init,
    out_features: usize,
    in_features: usize,
    rng: &mut R,
) -> Array2<F> {
    let shape = (out_features, in_features);
    let fan_in = in_features.max(1) as f64;
    let values: Array2<f64> = match init {
        Init::Zeros => Array2::zeros(shape),
        Init::Uniform => uniform(shape, 1.0 / fan_in.sqrt(), rng),
        Init::Xavier => {
            let limit = (6.0 / (in_features + out_features).max(1) as f64).sqrt();
            uniform(shape, limit, rng)
        }
        Init::He => {
            let std = (2.0 / fan_in).sqrt();
            Array2::from_shape_simple_fn(shape, || std * gaussian(rng))
        }
        Init::Orthogonal => orthogonal(shape, rng),
    };
    values.mapv(F::from_f64)
}

fn uniform<R: Rng + ?Sized>(shape: (usize, usize), limit: f64, rng: &mut R) -> Array2<f64> {
    Array2::from_shape_simple_fn(shape, || rng.random_range(-limit..limit))
}

fn gaussian<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    StandardNormal.sample(rng)
}

fn orthogonal<R: Rng + ?Sized>((rows, cols): (usize, usize), rng: &mut R) -> Array2<f64> {
    if rows == 0 || cols == 0 {
        return Array2::zeros((rows, cols));
    }
    // Factor a tall Gaussian matrix (max x min); its Q has orthonormal columns.
    let (tall, short) = (rows.max(cols), rows.min(cols));
    let gaussian_matrix = Array2::from_shape_simple_fn((tall, short), || gaussian(rng));
    // On one OpenBLAS thread: the threaded QR's last bits follow the thread count. The QR
    // cannot fail for the sizes `network::check_sizes` lets through (every width below
    // i32::MAX, the matrix in memory): a Gaussian matrix has full rank with probability one.
    let (mut q, r) = with_one_blas_thread(|| gaussian_matrix.qr())
        .expect("QR of a Gaussian matrix succeeds with probability one");
    for (j, mut column) in q.columns_mut().into_iter().enumerate() {
        if r[[j, j]] < 0.0 {
            column.mapv_inplace(|v| -v);
        }
    }
    if rows >= cols {
        q
    } else {
        q.t().as_standard_layout().into_owned()
    }
}
