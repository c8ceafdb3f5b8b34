//! The scalar types nabla computes in: `f32` and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};
use ndarray_npy::{ReadableElement, WritableElement};

/// A floating-point element type that every layer, loss and optimizer is generic over.
///
/// Implemented for `f32` and `f64`; both reach OpenBLAS (`sgemm` / `dgemm`) through
/// ndarray's `general_mat_mul`.
pub trait Float:
    num_traits::Float
    + LinalgScalar
    + ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + std::str::FromStr
    + ReadableElement
    + WritableElement
    + 'static
{
    /// The name used on the command line and in checkpoints (`"f32"` or `"f64"`).
    const NAME: &'static str;

    /// Converts from `f64`, rounding to the nearest value of `Self`.
    fn from_f64(value: f64) -> Self;

    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;

    /// An 8-bit pixel scaled to [0, 1]: `pixel / 255`.
    fn from_pixel(pixel: u8) -> Self;
}

impl Float for f32 {
    const NAME: &'static str = "f32";

    fn from_f64(value: f64) -> Self {
        value as f32
    }

    fn to_f64(self) -> f64 {
        self as f64
    }

    fn from_pixel(pixel: u8) -> Self {
        pixel as f32 / 255.0
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";

    fn from_f64(value: f64) -> Self {
        value
    }

    fn to_f64(self) -> f64 {
        self
    }

    fn from_pixel(pixel: u8) -> Self {
        pixel as f64 / 255.0
    }
}
