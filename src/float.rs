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

    /// `e^self` for `self <= 0`, written without calls or data-dependent branches so
    /// that an elementwise loop over it compiles to SIMD instructions (a loop over `exp`
    /// calls libm once per element). Within 2 ulp of `exp` (the tests sweep the domain,
    /// subnormal results included); exactly 1 at 0, 0 where `e^x` rounds to 0 (below
    /// `-103.97` in f32, `-745.13` in f64) and at `-inf`; NaN for NaN. Positive arguments are outside its
    /// domain (the result is unspecified, but never undefined behaviour).
    fn exp_non_positive(self) -> Self;

    /// The error function `erf(self) = 2/sqrt(pi) * integral from 0 to self of e^(-t^2)
    /// dt` (libm's `erf` / `erff`), for the exact GELU.
    fn erf(self) -> Self;
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

    #[inline(always)]
    fn exp_non_positive(self) -> Self {
        exp_non_positive_f32(self)
    }

    fn erf(self) -> Self {
        libm::erff(self)
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

    #[inline(always)]
    fn exp_non_positive(self) -> Self {
        exp_non_positive_f64(self)
    }

    fn erf(self) -> Self {
        libm::erf(self)
    }
}

/// `e^x` for `x <= 0` in f32: `x = k ln2 + r` with `|r| <= ln2 / 2` (`ln2` split in two
/// parts so that `k ln2` is exact), Cephes' degree-6 polynomial for `e^r`, and `2^k`
/// built from its bits. `k` is rounded with the `1.5 * 2^23` trick (adding it leaves
/// `k` in the low mantissa bits), which vectorises where `round` would not.
#[inline(always)]
fn exp_non_positive_f32(x: f32) -> f32 {
    const SMALLEST: f32 = -103.972_08; // ln(2^-150): below, e^x rounds to 0
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0;
    let clamped = if x < SMALLEST { SMALLEST } else { x };
    let shifted = clamped * std::f32::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let k_bits = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = clamped - k * LN2_HIGH - k * LN2_LOW;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // 2^k as two normal halves, so that results down to the subnormals round once.
    let half = k_bits >> 1;
    let scale = |k: i32| f32::from_bits((k.wrapping_add(127) as u32) << 23);
    if x < SMALLEST {
        0.0
    } else {
        e_r * scale(half) * scale(k_bits.wrapping_sub(half))
    }
}

/// `e^x` for `x <= 0` in f64: as [`exp_non_positive_f32`], with Cephes' Padé form
/// `e^r = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2))` and the `1.5 * 2^52` rounding trick.
#[inline(always)]
fn exp_non_positive_f64(x: f64) -> f64 {
    const SMALLEST: f64 = -745.133_219_101_941_1; // ln(2^-1075): below, e^x rounds to 0
    const LN2_HIGH: f64 = 6.931_457_519_531_25e-1;
    const LN2_LOW: f64 = 1.428_606_820_309_417_3e-6;
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let clamped = if x < SMALLEST { SMALLEST } else { x };
    let shifted = clamped * std::f64::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let k_bits = (shifted.to_bits() as i64).wrapping_sub(ROUND.to_bits() as i64);
    let r = clamped - k * LN2_HIGH - k * LN2_LOW;
    let rr = r * r;
    let p = r * ((1.261_771_930_748_105_9e-4 * rr + 3.029_944_077_074_419_6e-2) * rr + 1.0);
    let q = ((3.001_985_051_386_644_6e-6 * rr + 2.524_483_403_496_841e-3) * rr
        + 2.272_655_482_081_550_3e-1)
        * rr
        + 2.0;
    let e_r = 1.0 + 2.0 * (p / (q - p));
    let half = k_bits >> 1;
    let scale = |k: i64| f64::from_bits((k.wrapping_add(1023) as u64) << 52);
    if x < SMALLEST {
        0.0
    } else {
        e_r * scale(half) * scale(k_bits.wrapping_sub(half))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units in the last place between `a` and `b` (same sign, finite).
    fn ulps32(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    fn ulps64(a: f64, b: f64) -> u64 {
        (a.to_bits() as i128 - b.to_bits() as i128).unsigned_abs() as u64
    }

    #[test]
    fn exp_non_positive_is_within_two_ulp_of_exp() {
        let mut worst = (0, 0.0f32);
        for i in 0..=2_000_000 {
            let x = -103.9 * i as f32 / 2_000_000.0;
            let ulps = ulps32(x.exp_non_positive(), x.exp());
            if ulps > worst.0 {
                worst = (ulps, x);
            }
        }
        assert!(worst.0 <= 2, "f32: {} ulp at {}", worst.0, worst.1);
        let mut worst = (0, 0.0f64);
        for i in 0..=2_000_000 {
            let x = -745.1 * i as f64 / 2_000_000.0;
            let ulps = ulps64(x.exp_non_positive(), x.exp());
            if ulps > worst.0 {
                worst = (ulps, x);
            }
        }
        assert!(worst.0 <= 2, "f64: {} ulp at {}", worst.0, worst.1);
        // Near 0, where sigmoid and tanh live most.
        for i in 0..=100_000 {
            let x = -1e-3 * i as f64 / 100_000.0;
            assert!(ulps64(x.exp_non_positive(), x.exp()) <= 2, "f64 at {x}");
            let x = x as f32;
            assert!(ulps32(x.exp_non_positive(), x.exp()) <= 2, "f32 at {x}");
        }
    }

    #[test]
    fn erf_matches_known_values() {
        // erf(1) and erf(-0.5) from Python's math.erf.
        assert_eq!(Float::erf(0.0f64), 0.0);
        assert!((Float::erf(1.0f64) - 0.842_700_792_949_714_9).abs() < 1e-16);
        assert!((Float::erf(-0.5f64) + 0.520_499_877_813_046_5).abs() < 1e-16);
        assert!((Float::erf(1.0f32) - 0.842_700_8).abs() < 1e-7);
        assert_eq!(Float::erf(f64::INFINITY), 1.0);
        assert!(Float::erf(f64::NAN).is_nan());
    }

    #[test]
    fn exp_non_positive_edges() {
        assert_eq!(0.0f32.exp_non_positive(), 1.0);
        assert_eq!(0.0f64.exp_non_positive(), 1.0);
        assert_eq!((-0.0f64).exp_non_positive(), 1.0);
        assert_eq!(f32::NEG_INFINITY.exp_non_positive(), 0.0);
        assert_eq!(f64::NEG_INFINITY.exp_non_positive(), 0.0);
        assert_eq!((-1000.0f64).exp_non_positive(), 0.0);
        assert_eq!((-110.0f32).exp_non_positive(), 0.0);
        assert!(f32::NAN.exp_non_positive().is_nan());
        assert!(f64::NAN.exp_non_positive().is_nan());
        // Subnormal results, down to the smallest.
        for x in [-708.0f64, -720.0, -744.0, -745.0] {
            assert!(ulps64(x.exp_non_positive(), x.exp()) <= 2, "{x}");
        }
        for x in [-87.0f32, -90.0, -100.0, -103.0] {
            assert!(ulps32(x.exp_non_positive(), x.exp()) <= 2, "{x}");
        }
    }
}
