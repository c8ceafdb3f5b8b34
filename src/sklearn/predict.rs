//! Prediction from a fitted estimator's attributes as they stand: `coefs_` `(in, out)`
//! and `intercepts_` `(out)` per layer, read in place (no copy), so that a one-row
//! `predict` costs a few small GEMMs, any number of threads may predict with one model
//! at once, and weights a user assigned or edited are the ones used (as in
//! scikit-learn, whose `predict` reads `coefs_` every time).
//!
//! Shapes: `x: (rows, in)` -> `(rows, outputs)`; `x` dense or sparse (sparse rows are
//! multiplied by `coefs_[0]` directly, see [`super::inputs`]). A small prediction runs on the calling
//! thread; a larger one (see [`PARALLEL_WORK`]) is cut into chunks of at most
//! [`crate::train::EVAL_CHUNK_ROWS`] rows, at least one per core, shared between the
//! cores of nabla's pool, each with one-thread GEMMs.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::buffer::Buffer;
use crate::float::Float;
use crate::gemm::gemm;
use crate::layers::{fill_rows_with, ActivationKind};
use crate::limits::{check_memory, product, sum};
use crate::threads;
use crate::train::EVAL_CHUNK_ROWS;

use super::inputs::{add_sparse_product, Inputs};
use super::{Output, SklearnError};

/// One layer's `(coefs (in, out), intercepts (out))`.
pub type LayerView<'a, F> = (ArrayView2<'a, F>, ArrayView1<'a, F>);

/// Checks that `layers` chain into a network: at least one layer, each layer's
/// intercepts as wide as its coefficients, each layer's input the previous output.
pub(crate) fn check_layers<F>(layers: &[LayerView<'_, F>]) -> Result<(), SklearnError> {
    if layers.is_empty() {
        return Err(SklearnError::Model(crate::network::ModelError::Empty));
    }
    for (index, (coefs, intercepts)) in layers.iter().enumerate() {
        if coefs.ncols() != intercepts.len() {
            return Err(SklearnError::Shapes {
                layer: index,
                coefs: coefs.dim(),
                intercepts: intercepts.len(),
            });
        }
        if index > 0 && coefs.nrows() != layers[index - 1].0.ncols() {
            return Err(SklearnError::DataShape {
                what: "coefs_",
                found: coefs.dim(),
                expected: format!(
                    "{} rows (the width of layer {})",
                    layers[index - 1].0.ncols(),
                    index - 1
                ),
            });
        }
    }
    Ok(())
}

/// The outputs `(rows, outputs)` of `x: (rows, in)` through `layers` with `activation`
/// between them and `output` at the end: a classifier's probabilities, a regressor's
/// predictions. The memory it needs is checked first.
pub fn predict_proba<'x, F: Float>(
    layers: &[LayerView<'_, F>],
    activation: ActivationKind,
    output: Output,
    x: impl Into<Inputs<'x, F>>,
) -> Result<Array2<F>, SklearnError> {
    let x = x.into();
    check_layers(layers)?;
    let inputs = layers[0].0.nrows();
    if x.ncols() != inputs {
        return Err(SklearnError::DataShape {
            what: "X",
            found: x.dim(),
            expected: format!("{inputs} features"),
        });
    }
    let outputs = layers[layers.len() - 1].0.ncols();
    let widest = layers
        .iter()
        .map(|(coefs, _)| coefs.ncols())
        .max()
        .unwrap_or(0);
    let rows = x.nrows();
    // Shared between the cores when the work is worth a hand-over to the pool: in
    // chunks of at most EVAL_CHUNK_ROWS, and at least one chunk per core.
    let work = layers
        .iter()
        .map(|(coefs, _)| coefs.len())
        .sum::<usize>()
        .saturating_mul(rows);
    let threads = if work >= PARALLEL_WORK {
        threads::budget().threads
    } else {
        1
    };
    let chunk_rows = if threads > 1 {
        rows.div_ceil(threads)
            .next_multiple_of(8)
            .min(EVAL_CHUNK_ROWS)
    } else {
        EVAL_CHUNK_ROWS
    };
    let chunks = rows.div_ceil(chunk_rows).max(1);
    let parts = threads.min(chunks);
    let float = std::mem::size_of::<F>();
    check_memory(
        format!("predicting {rows} rows"),
        sum([
            product(&[rows, outputs, float]),
            product(&[parts, 2, chunk_rows.min(rows), widest, float]),
        ]),
    )?;
    let mut out = Array2::zeros((rows, outputs));
    let run_chunk = |scratch: &mut [Buffer<F>; 2], index: usize, chunk: ArrayViewMut2<'_, F>| {
        let start = index * chunk_rows;
        let rows = x.slice_rows(start..start + chunk.nrows());
        forward(layers, activation, output, rows, scratch, chunk);
    };
    threads::with_one_blas_thread(|| {
        if chunks <= 1 {
            run_chunk(&mut Default::default(), 0, out.view_mut());
            return;
        }
        threads::on_pool(parts, || {
            out.axis_chunks_iter_mut(Axis(0), chunk_rows)
                .into_par_iter()
                .enumerate()
                .for_each_init(Default::default, |scratch, (index, chunk)| {
                    run_chunk(scratch, index, chunk)
                });
        });
    });
    Ok(out)
}

/// Multiply-adds (rows times weights) from which a prediction is shared between the
/// cores: about 200 microseconds of one core's GEMMs, ten times a hand-over to the pool.
const PARALLEL_WORK: usize = 4_000_000;

/// `out = output(... activation(x W_0 + b_0) ... W_last + b_last)` for one chunk,
/// through two alternating buffers; `x: (rows, in)`, `out: (rows, outputs)`.
fn forward<F: Float>(
    layers: &[LayerView<'_, F>],
    activation: ActivationKind,
    output: Output,
    x: Inputs<'_, F>,
    scratch: &mut [Buffer<F>; 2],
    mut out: ArrayViewMut2<'_, F>,
) {
    let rows = x.nrows();
    let last = layers.len() - 1;
    let [a, b] = scratch;
    let (mut source, mut target) = (a, b);
    for (index, (coefs, intercepts)) in layers.iter().enumerate() {
        // h: (rows, in) -> (rows, out) = h W + b
        let mut result = if index == last {
            out.view_mut()
        } else {
            target.resize(rows, coefs.ncols())
        };
        fill_rows_with(result.view_mut(), *intercepts);
        match (index, x) {
            (0, Inputs::Sparse(x)) => add_sparse_product(&x, *coefs, result.view_mut()),
            (0, Inputs::Dense(x)) => gemm(F::one(), x, *coefs, F::one(), result.view_mut()),
            _ => gemm(F::one(), source.view(), *coefs, F::one(), result.view_mut()),
        }
        if index == last {
            output.apply(result);
        } else {
            activation.apply_in_place(result);
            std::mem::swap(&mut source, &mut target);
        }
    }
}
