//! Training on sparse rows without densifying them: the first linear layer's products
//! with a CSR batch are computed from its stored values only, the rest of the network
//! runs as usual on the first layer's dense output.
//!
//! Shapes: the batch `x: (batch, in)` sparse, the first layer's `W: (hidden, in)`, `b:
//! (hidden)`, its output `z = x W^T + b: (batch, hidden)`. Forward: `z[r, h] = b[h] +
//! sum over row r's stored (j, v) of v W[h, j]`. Backward, from `dz: (batch, hidden)`:
//! `dW[h, j] = sum over the rows' stored (r, j, v) of v dz[r, h]` and `db = sum_r dz[r,
//! ..]`. Both run one output unit `h` at a time (its row of `W` or `dW` stays in cache
//! while the batch's stored values are read), the units shared between the cores.
//!
//! A TF-IDF batch of 200 rows at 0.1% density touches a few thousand of 50,000 columns:
//! `dW` is zero except in those, so only the columns of the previous batch are cleared
//! before the next is written.

use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::buffer::Buffer;
use crate::float::Float;
use crate::layers::{Layer, Linear};
use crate::module::Module;
use crate::network::MultiLayerPerceptron;

use super::inputs::{sparse_row, CsrView};

/// The first layer's state between a sparse forward and its backward.
#[derive(Debug)]
pub(crate) struct SparseFirstLayer<F> {
    /// `z^T: (hidden, batch)`, one unit's outputs per row (written in parallel).
    z_t: Buffer<F>,
    /// `z: (batch, hidden)`, the rest of the network's input.
    z: Buffer<F>,
    /// The batch's rows of `x`.
    rows: Vec<usize>,
    /// The columns `dW` may be non-zero in (those of the last backward); `None` until
    /// the whole of `dW` has been cleared once.
    touched: Option<Vec<usize>>,
}

impl<F: Float> SparseFirstLayer<F> {
    /// A fresh state (the first backward clears all of `dW`).
    pub(crate) fn new() -> Self {
        Self {
            z_t: Buffer::new(),
            z: Buffer::new(),
            rows: Vec::new(),
            touched: None,
        }
    }

    /// The network's outputs `(batch, outputs)` for rows `rows` of `x`.
    pub(crate) fn forward<'m>(
        &'m mut self,
        model: &'m mut MultiLayerPerceptron<F>,
        x: CsrView<'_, F>,
        rows: impl IntoIterator<Item = usize>,
    ) -> ArrayView2<'m, F> {
        self.rows.clear();
        self.rows.extend(rows);
        let batch = self.rows.len();
        let (first, rest) = first_and_rest(model);
        let weights = first.weights();
        let bias = first.bias();
        let hidden = weights.nrows();
        let mut z_t = self.z_t.resize(hidden, batch);
        let rows = &self.rows;
        z_t.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(weights.axis_iter(Axis(0)))
            .zip(bias.axis_iter(Axis(0)))
            .for_each(|((mut unit, w), b)| {
                // Cannot fail: a linear layer's weights are kept in standard layout.
                let (w, b) = (w.as_slice().expect("standard layout"), *b.into_scalar());
                for (slot, &row) in unit.iter_mut().zip(rows) {
                    let mut sum = b;
                    for (column, value) in sparse_row(&x, row) {
                        sum += value * w[column];
                    }
                    *slot = sum;
                }
            });
        let mut z = self.z.resize(batch, hidden);
        z.assign(&self.z_t.view().t());
        let mut output = self.z.view();
        for layer in rest {
            output = layer.forward(output);
        }
        output
    }

    /// Backward from `delta: (batch, outputs)` (dL/d(outputs) of the last forward):
    /// every layer's gradients, the first layer's from the sparse rows.
    pub(crate) fn backward(
        &mut self,
        model: &mut MultiLayerPerceptron<F>,
        x: CsrView<'_, F>,
        delta: ArrayView2<'_, F>,
    ) {
        let (first, rest) = first_and_rest(model);
        let mut grad = delta;
        for layer in rest.iter_mut().rev() {
            grad = layer.backward(grad);
        }
        // dz: (batch, hidden)
        let (mut d_weights, mut d_bias) = first.gradients_mut();
        match &self.touched {
            None => d_weights.fill(F::zero()),
            Some(columns) => clear_columns(d_weights.view_mut(), columns),
        }
        let rows = &self.rows;
        d_weights
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(grad.axis_iter(Axis(1)).into_par_iter())
            .zip(d_bias.axis_iter_mut(Axis(0)).into_par_iter())
            .for_each(|((mut unit, dz), mut db)| {
                // Cannot fail: a linear layer's gradients are kept in standard layout.
                let unit = unit.as_slice_mut().expect("standard layout");
                let mut bias_sum = F::zero();
                for (&row, &dz) in rows.iter().zip(dz.iter()) {
                    bias_sum += dz;
                    for (column, value) in sparse_row(&x, row) {
                        unit[column] += value * dz;
                    }
                }
                db.fill(bias_sum);
            });
        let touched = self.touched.get_or_insert_with(Vec::new);
        touched.clear();
        for &row in rows {
            touched.extend(sparse_row(&x, row).map(|(column, _)| column));
        }
    }
}

/// The network's first linear layer and the layers after it.
fn first_and_rest<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
) -> (&mut Linear<F>, &mut [Layer<F>]) {
    let (first, rest) = model
        .layers_mut()
        .split_first_mut()
        // Cannot fail: a network has at least one layer.
        .expect("a network has at least one layer");
    match first {
        Layer::Linear(first) => (first, rest),
        // Cannot happen: the scikit-learn engine's networks start with a linear layer.
        _ => unreachable!("the network starts with a linear layer"),
    }
}

/// Zeros the given columns of `matrix: (rows, cols)`.
fn clear_columns<F: Float>(mut matrix: ArrayViewMut2<'_, F>, columns: &[usize]) {
    matrix
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .for_each(|mut row: ArrayViewMut1<'_, F>| {
            for &column in columns {
                row[column] = F::zero();
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::ActivationKind;
    use ndarray::{Array1, Array2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random `(rows, cols)` CSR matrix with about `density` stored values, some
    /// columns repeated within a row; returns its arrays and its dense form.
    fn random_csr(
        rng: &mut ChaCha8Rng,
        rows: usize,
        cols: usize,
        density: f64,
    ) -> (Vec<i64>, Vec<i64>, Vec<f64>, Array2<f64>) {
        let (mut indptr, mut indices, mut data) = (vec![0i64], Vec::new(), Vec::new());
        let mut dense = Array2::zeros((rows, cols));
        for row in 0..rows {
            for column in 0..cols {
                if rng.random_bool(density) {
                    let value = rng.random_range(-1.0..1.0);
                    indices.push(column as i64);
                    data.push(value);
                    dense[[row, column]] += value;
                    if rng.random_bool(0.2) {
                        // A repeated entry: SciPy adds them up.
                        indices.push(column as i64);
                        data.push(0.5);
                        dense[[row, column]] += 0.5;
                    }
                }
            }
            indptr.push(indices.len() as i64);
        }
        (indptr, indices, data, dense)
    }

    fn network(rng: &mut ChaCha8Rng, sizes: &[usize]) -> MultiLayerPerceptron<f64> {
        let mut layers = Vec::new();
        for (index, pair) in sizes.windows(2).enumerate() {
            if index > 0 {
                layers.push(Layer::activation(ActivationKind::Tanh));
            }
            let weights =
                Array2::from_shape_fn((pair[1], pair[0]), |_| rng.random_range(-0.5..0.5));
            let bias = Array1::from_shape_fn(pair[1], |_| rng.random_range(-0.5..0.5));
            layers.push(Layer::Linear(Linear::from_params(weights, bias)));
        }
        MultiLayerPerceptron::new(layers).unwrap()
    }

    #[test]
    fn sparse_rows_give_the_dense_rows_outputs_and_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (indptr, indices, data, dense) = random_csr(&mut rng, 9, 40, 0.15);
        let x = CsrView::new((9, 40), &indptr, &indices, &data).unwrap();
        for sizes in [&[40, 6, 3][..], &[40, 4][..]] {
            let mut sparse_model = network(&mut ChaCha8Rng::seed_from_u64(5), sizes);
            let mut dense_model = sparse_model.clone();
            let mut step = SparseFirstLayer::new();
            // Two batches: the second clears only the first one's columns.
            for rows in [vec![4, 0, 7, 7], vec![1, 2, 3, 5, 6, 8]] {
                let batch = dense.select(Axis(0), &rows);
                let want = dense_model.forward(batch.view()).to_owned();
                let got = step
                    .forward(&mut sparse_model, x, rows.iter().copied())
                    .to_owned();
                assert!((&got - &want).iter().all(|d| d.abs() < 1e-14), "{sizes:?}");
                let delta =
                    Array2::from_shape_fn(want.dim(), |(r, c)| (r + 2 * c) as f64 * 0.1 - 0.3);
                dense_model.backward(delta.view());
                step.backward(&mut sparse_model, x, delta.view());
                for (a, b) in sparse_model
                    .linear_layers()
                    .zip(dense_model.linear_layers())
                {
                    let dw = &a.d_weights() - &b.d_weights();
                    let db = &a.d_bias() - &b.d_bias();
                    assert!(
                        dw.iter().chain(db.iter()).all(|d| d.abs() < 1e-13),
                        "{sizes:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn malformed_csr_arrays_are_refused_with_what_is_wrong() {
        let data = [1.0, 2.0];
        let cases: [(&[i64], &[i64], &str); 5] = [
            (&[0, 1], &[0, 1], "indptr has 2 entries, expected 3"),
            (&[0, 1, 3], &[0, 1], "indptr runs from 0 to 3"),
            (&[0, 2, 1], &[0, 1], "indptr runs from 0 to 1"),
            (&[0, 1, 2], &[0, 9], "column index 9 is outside 0..4"),
            (&[0, 1, 2], &[-1, 0], "column index -1 is outside 0..4"),
        ];
        for (indptr, indices, message) in cases {
            let error = CsrView::new((2, 4), indptr, indices, &data).unwrap_err();
            assert!(error.to_string().contains(message), "{error}");
        }
        let error = CsrView::new((2, 4), &[0, 2, 1, 2][..3], &[0, 1], &data);
        assert!(error.is_err());
        let error = CsrView::new((3, 4), &[0, 2, 1, 2], &[0, 1], &data).unwrap_err();
        assert!(
            error.to_string().contains("indptr decreases at row 1"),
            "{error}"
        );
    }
}
