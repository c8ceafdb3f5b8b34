//! The float type a command computes in, chosen at run time: each command implements
//! [`RunInFloat`] once, generically, and [`run_in`] picks `f32` or `f64`.

use clap::ValueEnum;
use nabla::Float;

use super::CliError;

/// Floating-point type to compute in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    /// 32-bit floats (sgemm).
    F32,
    /// 64-bit floats (dgemm).
    F64,
}

impl Dtype {
    /// `f32` or `f64`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => f32::NAME,
            Dtype::F64 => f64::NAME,
        }
    }
}

/// A command body written once for any float type.
pub trait RunInFloat {
    /// Runs the command computing in `F`.
    fn run<F: Float>(self) -> Result<(), CliError>;
}

/// Runs `command` in the float type `dtype` names.
pub fn run_in(dtype: Dtype, command: impl RunInFloat) -> Result<(), CliError> {
    match dtype {
        Dtype::F32 => command.run::<f32>(),
        Dtype::F64 => command.run::<f64>(),
    }
}

/// A command body written once for any float type, with a result.
pub trait RunInFloatReturning {
    /// What it returns.
    type Output;
    /// Runs the command computing in `F`.
    fn run<F: Float>(self) -> Result<Self::Output, CliError>;
}

/// Runs `command` in the float type `dtype` names, returning its result.
pub fn run_in_returning<C: RunInFloatReturning>(
    dtype: Dtype,
    command: C,
) -> Result<C::Output, CliError> {
    match dtype {
        Dtype::F32 => command.run::<f32>(),
        Dtype::F64 => command.run::<f64>(),
    }
}
