//! Feature matrices: dense floats, or 8-bit pixels kept compact and scaled to [0, 1]
//! only when a batch is formed.

use std::ops::Range;

use ndarray::{s, Array2, ArrayViewMut2, Axis, Zip};

use crate::float::Float;

/// A selection of rows: a contiguous range, or explicit indices (a shuffled batch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rows<'a> {
    /// Rows `start..end`, in order.
    Range(Range<usize>),
    /// These rows, in this order.
    Indices(&'a [usize]),
}

impl Rows<'_> {
    /// The selected rows at positions `part` of this selection.
    pub(crate) fn part(&self, part: Range<usize>) -> Rows<'_> {
        match self {
            Rows::Range(range) => Rows::Range(range.start + part.start..range.start + part.end),
            Rows::Indices(indices) => Rows::Indices(&indices[part]),
        }
    }

    /// The number of rows selected.
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::Range(range) => range.len(),
            Rows::Indices(indices) => indices.len(),
        }
    }
}

/// `values[i] = pixels[i] / 255`.
fn convert_pixels<F: Float>(values: &mut [F], pixels: &[u8]) {
    for (value, &pixel) in values.iter_mut().zip(pixels) {
        *value = F::from_pixel(pixel);
    }
}

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

    /// Writes the selected rows as floats into `target: (rows.len(), features)`,
    /// converting pixels to `pixel / 255` on the way.
    pub(crate) fn copy_rows_into(&self, rows: &Rows<'_>, mut target: ArrayViewMut2<'_, F>) {
        assert_eq!(
            target.dim(),
            (rows.len(), self.ncols()),
            "copy_rows_into: the target does not fit the rows"
        );
        match (self, rows) {
            (Features::Dense(x), Rows::Range(range)) => {
                target.assign(&x.slice(s![range.clone(), ..]))
            }
            (Features::Pixels(pixels), Rows::Range(range)) => {
                let source = pixels.slice(s![range.clone(), ..]);
                for (mut row, pixels) in target.rows_mut().into_iter().zip(source.rows()) {
                    match (row.as_slice_mut(), pixels.as_slice()) {
                        // Plain slices: the conversion loop vectorises.
                        (Some(row), Some(pixels)) => convert_pixels(row, pixels),
                        _ => Zip::from(row)
                            .and(pixels)
                            .for_each(|value, &pixel| *value = F::from_pixel(pixel)),
                    }
                }
            }
            (_, Rows::Indices(indices)) => {
                for (row, &index) in target.rows_mut().into_iter().zip(indices.iter()) {
                    self.copy_rows_into(&Rows::Range(index..index + 1), row.insert_axis(Axis(0)));
                }
            }
        }
    }

    /// All rows as a dense float matrix.
    pub fn to_dense(&self) -> Array2<F> {
        match self {
            Features::Dense(x) => x.clone(),
            Features::Pixels(pixels) => pixels.mapv(F::from_pixel),
        }
    }

    /// The rows `indices`, in that order, as a new matrix of the same kind.
    pub fn select(&self, indices: &[usize]) -> Features<F> {
        match self {
            Features::Dense(x) => Features::Dense(x.select(Axis(0), indices)),
            Features::Pixels(x) => Features::Pixels(x.select(Axis(0), indices)),
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
