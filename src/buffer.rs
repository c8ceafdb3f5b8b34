//! Grow-only 2-D scratch buffers owned by layers and losses.
//!
//! A [`Buffer`] keeps its allocation when the number of rows shrinks (the last, smaller
//! batch of an epoch) and grows it only when more rows than ever before are asked for,
//! so a training loop allocates nothing after its first (largest) batch.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::float::Float;

/// A `(rows, cols)` matrix in standard (row-major) layout over a reusable `Vec`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Buffer<F> {
    data: Vec<F>,
    rows: usize,
    cols: usize,
}

impl<F: Float> Buffer<F> {
    /// An empty `(0, 0)` buffer; nothing is allocated until [`Buffer::resize`].
    pub(crate) fn new() -> Self {
        Self {
            data: Vec::new(),
            rows: 0,
            cols: 0,
        }
    }

    /// Sets the shape to `(rows, cols)`, growing the allocation only if it is too small,
    /// and returns a mutable view. The contents are unspecified: callers overwrite them.
    pub(crate) fn resize(&mut self, rows: usize, cols: usize) -> ArrayViewMut2<'_, F> {
        let len = rows * cols;
        if self.data.len() < len {
            self.data.resize(len, F::zero());
        }
        self.rows = rows;
        self.cols = cols;
        self.view_mut()
    }

    /// The current `(rows, cols)` contents.
    pub(crate) fn view(&self) -> ArrayView2<'_, F> {
        ArrayView2::from_shape((self.rows, self.cols), &self.data[..self.rows * self.cols])
            // Cannot fail: `resize` keeps `data.len() >= rows * cols`.
            .expect("buffer length covers its shape")
    }

    /// The current `(rows, cols)` contents, mutable.
    pub(crate) fn view_mut(&mut self) -> ArrayViewMut2<'_, F> {
        let len = self.rows * self.cols;
        ArrayViewMut2::from_shape((self.rows, self.cols), &mut self.data[..len])
            // Cannot fail: `resize` keeps `data.len() >= rows * cols`.
            .expect("buffer length covers its shape")
    }

    /// The current shape `(rows, cols)`.
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}
