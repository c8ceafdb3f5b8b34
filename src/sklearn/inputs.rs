//! The input rows of a fit or a prediction: a dense matrix, or a sparse one in compressed
//! sparse row form (what SciPy's `csr_matrix` holds: text features, one-hot encodings).
//!
//! Training densifies the rows of one batch at a time into the first layer's input
//! buffer (so the memory a fit needs is bounded by the batch, not by the data's dense
//! size); prediction multiplies the sparse rows by the first layer's coefficients
//! directly (each stored value adds one scaled row of `coefs_[0]`).
//!
//! Shapes: `(rows, features)`; a CSR matrix's row `r` holds the values
//! `data[indptr[r]..indptr[r + 1]]` at the columns `indices[indptr[r]..indptr[r + 1]]`
//! (columns may repeat: repeated entries add up, as in SciPy).

use std::ops::Range;

use ndarray::{s, ArrayView2, ArrayViewMut2};

use crate::float::Float;

use super::SklearnError;

/// A borrowed CSR matrix whose structure has been checked ([`CsrView::new`]).
#[derive(Clone, Copy, Debug)]
pub struct CsrView<'a, F> {
    rows: usize,
    cols: usize,
    indptr: &'a [i64],
    indices: &'a [i64],
    data: &'a [F],
}

impl<'a, F: Float> CsrView<'a, F> {
    /// A `(rows, cols)` matrix from SciPy's three arrays, checked: `indptr` has `rows +
    /// 1` non-decreasing offsets from 0 to the number of stored values, `indices` and
    /// `data` have that many entries, and every column index is below `cols`.
    pub fn new(
        (rows, cols): (usize, usize),
        indptr: &'a [i64],
        indices: &'a [i64],
        data: &'a [F],
    ) -> Result<Self, SklearnError> {
        let malformed = |why: String| SklearnError::Sparse(why);
        if indptr.len() != rows + 1 {
            return Err(malformed(format!(
                "indptr has {} entries, expected {} (rows + 1)",
                indptr.len(),
                rows + 1
            )));
        }
        if indices.len() != data.len() {
            return Err(malformed(format!(
                "indices has {} entries but data {}",
                indices.len(),
                data.len()
            )));
        }
        if indptr[0] != 0 || indptr[rows] != data.len() as i64 {
            return Err(malformed(format!(
                "indptr runs from {} to {}, expected 0 to {} (the stored values)",
                indptr[0],
                indptr[rows],
                data.len()
            )));
        }
        if let Some(row) = indptr.windows(2).position(|pair| pair[1] < pair[0]) {
            return Err(malformed(format!("indptr decreases at row {row}")));
        }
        if let Some(&column) = indices
            .iter()
            .find(|&&column| column < 0 || column as u64 >= cols as u64)
        {
            return Err(malformed(format!(
                "column index {column} is outside 0..{cols}"
            )));
        }
        Ok(Self {
            rows,
            cols,
            indptr,
            indices,
            data,
        })
    }

    /// `(rows, cols)`.
    pub fn dim(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

impl<'a, F> From<ArrayView2<'a, F>> for Inputs<'a, F> {
    fn from(x: ArrayView2<'a, F>) -> Self {
        Inputs::Dense(x)
    }
}

impl<'a, F> From<CsrView<'a, F>> for Inputs<'a, F> {
    fn from(x: CsrView<'a, F>) -> Self {
        Inputs::Sparse(x)
    }
}

/// A fit's or a prediction's input rows.
#[derive(Clone, Copy, Debug)]
pub enum Inputs<'a, F> {
    /// A dense `(rows, features)` matrix.
    Dense(ArrayView2<'a, F>),
    /// A sparse one.
    Sparse(CsrView<'a, F>),
}

impl<'a, F: Float> Inputs<'a, F> {
    /// `(rows, features)`.
    pub fn dim(&self) -> (usize, usize) {
        match self {
            Inputs::Dense(x) => x.dim(),
            Inputs::Sparse(x) => x.dim(),
        }
    }

    /// Rows.
    pub fn nrows(&self) -> usize {
        self.dim().0
    }

    /// Features.
    pub fn ncols(&self) -> usize {
        self.dim().1
    }

    /// The rows `range`.
    pub fn slice_rows(&self, range: Range<usize>) -> Inputs<'a, F> {
        match self {
            Inputs::Dense(x) => Inputs::Dense((*x).slice_move(s![range, ..])),
            Inputs::Sparse(x) => Inputs::Sparse(CsrView {
                rows: range.len(),
                cols: x.cols,
                // Offsets into the whole matrix's `indices` and `data`.
                indptr: &x.indptr[range.start..range.end + 1],
                indices: x.indices,
                data: x.data,
            }),
        }
    }

    /// Writes row `source` into `target` (dense: a copy; sparse: zeros and the stored
    /// values).
    pub fn copy_row(&self, source: usize, mut target: ndarray::ArrayViewMut1<'_, F>) {
        match self {
            Inputs::Dense(x) => target.assign(&x.row(source)),
            Inputs::Sparse(x) => {
                target.fill(F::zero());
                for (column, value) in sparse_row(x, source) {
                    target[column] += value;
                }
            }
        }
    }

    /// Writes rows `range` into `target: (range.len(), features)`.
    pub fn copy_rows(&self, range: Range<usize>, mut target: ArrayViewMut2<'_, F>) {
        match self {
            Inputs::Dense(x) => target.assign(&x.slice(s![range, ..])),
            Inputs::Sparse(_) => {
                for (row, slot) in range.zip(target.rows_mut()) {
                    self.copy_row(row, slot);
                }
            }
        }
    }
}

/// Row `row` of `x`'s stored values and their columns (`x` may be a slice of rows, whose
/// `indptr` holds offsets into the whole matrix's arrays).
pub(crate) fn sparse_row<'b, F: Float>(
    x: &'b CsrView<'_, F>,
    row: usize,
) -> impl Iterator<Item = (usize, F)> + 'b {
    let range = x.indptr[row] as usize..x.indptr[row + 1] as usize;
    x.indices[range.clone()]
        .iter()
        .zip(&x.data[range])
        .map(|(&column, &value)| (column as usize, value))
}

/// `out += x coefs` for sparse rows `x: (rows, in)` and dense `coefs: (in, out)`: each
/// stored value adds its scaled row of `coefs` (no densified copy of `x`).
pub(crate) fn add_sparse_product<F: Float>(
    x: &CsrView<'_, F>,
    coefs: ArrayView2<'_, F>,
    mut out: ArrayViewMut2<'_, F>,
) {
    for (row, mut target) in out.rows_mut().into_iter().enumerate() {
        for (column, value) in sparse_row(x, row) {
            target.scaled_add(value, &coefs.row(column));
        }
    }
}
