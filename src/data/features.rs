//! Feature matrices: dense floats, or 8-bit pixels kept compact and scaled to [0, 1]
//! only when a batch is formed.

use std::ops::Range;

use ndarray::{s, Array2, ArrayView2, Axis, Zip};

use crate::buffer::Buffer;
use crate::Float;

/// A `(rows, features)` matrix of inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum Features<F> {
    /// Floating-point features as given (for example parsed from CSV).
    Dense(Array2<F>),
    /// 8-bit pixels; feature value = `pixel / 255`. A quarter (f32) or an eighth (f64)
    /// of the memory of `Dense`.
    Pixels(Array2<u8>),
}

impl<F: Float> Features<F> {
    /// Number of rows (examples).
    pub fn nrows(&self) -> usize {
        match self {
            Features::Dense(x) => x.nrows(),
            Features::Pixels(x) => x.nrows(),
        }
    }

    /// Number of features per row.
    pub fn ncols(&self) -> usize {
        match self {
            Features::Dense(x) => x.ncols(),
            Features::Pixels(x) => x.ncols(),
        }
    }

    /// Rows `range` as floats `(range.len(), features)`: a view of the data when dense,
    /// else converted into `scratch` (which keeps its allocation between calls).
    pub fn rows<'a>(
        &'a self,
        range: Range<usize>,
        scratch: &'a mut Buffer<F>,
    ) -> ArrayView2<'a, F> {
        match self {
            Features::Dense(x) => x.slice(s![range, ..]),
            Features::Pixels(pixels) => {
                let source = pixels.slice(s![range, ..]);
                let target = scratch.resize(source.nrows(), source.ncols());
                Zip::from(target)
                    .and(source)
                    .for_each(|value, &pixel| *value = F::from_pixel(pixel));
                scratch.view()
            }
        }
    }

    /// The rows at `indices`, in that order, as floats `(indices.len(), features)`,
    /// gathered into `scratch`.
    pub fn gather<'a>(&self, indices: &[usize], scratch: &'a mut Buffer<F>) -> ArrayView2<'a, F> {
        let mut target = scratch.resize(indices.len(), self.ncols());
        for (mut row, &index) in target.rows_mut().into_iter().zip(indices) {
            match self {
                Features::Dense(x) => row.assign(&x.row(index)),
                Features::Pixels(pixels) => Zip::from(&mut row)
                    .and(pixels.row(index))
                    .for_each(|value, &pixel| *value = F::from_pixel(pixel)),
            }
        }
        scratch.view()
    }

    /// All rows as a dense float matrix.
    pub fn to_dense(&self) -> Array2<F> {
        match self {
            Features::Dense(x) => x.clone(),
            Features::Pixels(pixels) => pixels.mapv(F::from_pixel),
        }
    }

    /// The first `count` rows (all of them if there are fewer).
    pub fn head(&self, count: usize) -> Features<F> {
        let count = count.min(self.nrows());
        match self {
            Features::Dense(x) => {
                Features::Dense(x.slice_axis(Axis(0), (0..count).into()).to_owned())
            }
            Features::Pixels(x) => {
                Features::Pixels(x.slice_axis(Axis(0), (0..count).into()).to_owned())
            }
        }
    }

    /// Bytes held by the feature values.
    pub fn memory_bytes(&self) -> usize {
        match self {
            Features::Dense(x) => x.len() * std::mem::size_of::<F>(),
            Features::Pixels(x) => x.len(),
        }
    }
}
