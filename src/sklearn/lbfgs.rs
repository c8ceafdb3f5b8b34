//! What scikit-learn's `'lbfgs'` solver asks of the network at each evaluation
//! (`_loss_grad_lbfgs`): the loss of the whole data set and its gradient, for the
//! parameters packed into one vector as scikit-learn packs them (`_pack`: every layer's
//! coefficients `(in, out)` row by row, then every layer's intercepts). The optimizer
//! itself (SciPy's L-BFGS-B) runs in the caller.
//!
//! The rows go through the network in chunks of [`CHUNK_ROWS`] (the loss and the
//! gradient are sums over rows), so the memory a call needs is bounded by the chunk, not
//! by the data.

use ndarray::{s, Array1, Array2};

use crate::float::Float;
use crate::limits::{check_memory, product, sum};
use crate::module::{Module, ParameterKind};
use crate::threads::{self, BlasLease};

use super::sparse_step::SparseFirstLayer;
use super::{Inputs, Samples, SklearnError, SklearnMlp};

/// Rows per forward and backward pass of an evaluation: large enough for efficient
/// GEMMs, small enough to bound the buffers.
pub const CHUNK_ROWS: usize = 4096;

impl<F: Float> SklearnMlp<F> {
    /// The number of values in scikit-learn's packed parameter vector.
    pub fn packed_len(&self) -> usize {
        self.model.parameter_count()
    }

    /// Sets the weights from scikit-learn's packed vector `packed` (`_unpack`).
    pub fn unpack(&mut self, packed: &[f64]) -> Result<(), SklearnError> {
        self.check_packed("the packed parameters", packed.len())?;
        let offsets = self.packed_offsets();
        for (linear, &(coefs, intercepts, outputs)) in self.model.linear_layers_mut().zip(&offsets)
        {
            // nabla keeps (out, in); scikit-learn's coefs are (in, out), row-major.
            let inputs = linear.in_features();
            let block = &packed[coefs..coefs + inputs * outputs];
            for ((o, i), weight) in linear.weights_mut().indexed_iter_mut() {
                *weight = F::from_f64(block[i * outputs + o]);
            }
            let values = &packed[intercepts..intercepts + outputs];
            for (bias, &value) in linear.bias_mut().iter_mut().zip(values) {
                *bias = F::from_f64(value);
            }
        }
        Ok(())
    }

    /// scikit-learn's `_loss_grad_lbfgs` at the parameters `packed`: sets the weights
    /// to them, returns the loss of all of `samples` (the mean of the output's loss,
    /// weighted by the rows' weights, plus `alpha / 2 * sum W^2` divided by the rows or
    /// their weight total) and writes its gradient into `gradient` in the same packed
    /// order (`(sum dW + alpha W) / n`, `sum db / n`).
    pub fn loss_and_gradient(
        &mut self,
        packed: &[f64],
        samples: Samples<'_, F>,
        alpha: f64,
        gradient: &mut [f64],
    ) -> Result<f64, SklearnError> {
        self.check_data(samples)?;
        self.check_packed("the gradient", gradient.len())?;
        let rows = samples.x.nrows();
        let chunk = CHUNK_ROWS.min(rows.max(1));
        let float = std::mem::size_of::<F>();
        // Sparse rows never fill the first layer's input buffers.
        let unused = match samples.x {
            Inputs::Sparse(_) => product(&[chunk, self.model.in_features(), 2, float]),
            Inputs::Dense(_) => Some(0),
        };
        let needed = sum([
            self.model.buffer_bytes(chunk),
            product(&[chunk, self.model.out_features(), 2, float]),
        ])
        .map(|needed| needed.saturating_sub(unused.unwrap_or(0)));
        check_memory(format!("evaluating the loss in {chunk}-row chunks"), needed)?;
        let divisor = match samples.weights {
            Some(weights) => weights.iter().map(|&w| w.to_f64()).sum::<f64>(),
            None => rows as f64,
        };
        if divisor == 0.0 {
            return Err(SklearnError::ZeroWeights);
        }
        self.unpack(packed)?;
        gradient.fill(0.0);
        let budget = threads::budget();
        let total_loss = threads::on_pool(budget.threads, || {
            // One OpenBLAS thread: between evaluations SciPy's own BLAS threads run the
            // optimizer's vector steps, and OpenBLAS's idle threads of both libraries
            // spinning on the same cores cost more than a second thread gains. Measured
            // on 2 cores (digits and a 20,000-row table, `scripts/bench_sklearn.py`):
            // 3.4 and 9.5 ms per iteration with one thread, 6.6 and 15.2 with two.
            let _blas = BlasLease::new(1);
            let mut total = 0.0;
            let mut start = 0;
            let mut sparse = SparseFirstLayer::new();
            while start < rows {
                let end = (start + chunk).min(rows);
                total += self.accumulate_chunk(samples, start..end, gradient, &mut sparse);
                start = end;
            }
            total
        });
        let mut squares = 0.0;
        let mut coefs = 0;
        for linear in self.model.linear_layers() {
            let (outputs, inputs) = linear.weights().dim();
            for ((o, i), &weight) in linear.weights().indexed_iter() {
                let weight = weight.to_f64();
                squares += weight * weight;
                gradient[coefs + i * outputs + o] += alpha * weight;
            }
            coefs += inputs * outputs;
        }
        for value in gradient.iter_mut() {
            *value /= divisor;
        }
        Ok(total_loss / divisor + 0.5 * alpha * squares / divisor)
    }

    /// Forward and backward over rows `range` of `samples`: adds the rows' weighted loss
    /// sum to the result and their gradient sums (`dW`, `db`) into `gradient` (packed).
    fn accumulate_chunk(
        &mut self,
        samples: Samples<'_, F>,
        range: std::ops::Range<usize>,
        gradient: &mut [f64],
        sparse: &mut SparseFirstLayer<F>,
    ) -> f64 {
        let rows = range.len();
        let targets = samples.targets.slice(s![range.clone(), ..]);
        let weights = samples.weights.map(|w| w.slice_move(s![range.clone()]));
        let logits = match samples.x {
            Inputs::Sparse(x) => sparse.forward(&mut self.model, x, range.clone()),
            Inputs::Dense(_) => self
                .model
                .forward_with(rows, |input| samples.x.copy_rows(range.clone(), input)),
        };
        let mut delta = self.probabilities.resize(rows, logits.ncols());
        delta.assign(&logits);
        self.output.apply(delta.view_mut());
        let chunk_weight = match weights {
            Some(weights) => weights.iter().map(|&w| w.to_f64()).sum::<f64>(),
            None => rows as f64,
        };
        let loss = self.output.loss(delta.view(), targets, weights) * chunk_weight;
        delta -= &targets;
        if let Some(weights) = weights {
            for (mut row, &weight) in delta.rows_mut().into_iter().zip(weights) {
                row *= weight;
            }
        }
        match samples.x {
            Inputs::Sparse(x) => sparse.backward(&mut self.model, x, delta.view()),
            Inputs::Dense(_) => {
                self.model.backward(delta.view());
            }
        }
        let offsets = self.packed_offsets();
        let mut layer = 0;
        self.model.visit_parameters(&mut |parameter| {
            let (coefs, intercepts, outputs) = offsets[layer];
            match parameter.key.kind {
                ParameterKind::Weight => {
                    // (out, in) row-major -> scikit-learn's (in, out).
                    let inputs = parameter.grad.len() / outputs;
                    for o in 0..outputs {
                        let row = &parameter.grad[o * inputs..(o + 1) * inputs];
                        for (i, &g) in row.iter().enumerate() {
                            gradient[coefs + i * outputs + o] += g.to_f64();
                        }
                    }
                }
                ParameterKind::Bias => {
                    for (slot, &g) in gradient[intercepts..intercepts + outputs]
                        .iter_mut()
                        .zip(parameter.grad)
                    {
                        *slot += g.to_f64();
                    }
                    layer += 1;
                }
            }
        });
        loss
    }

    /// Where each layer's coefficients and intercepts start in the packed vector, and
    /// its outputs.
    fn packed_offsets(&self) -> Vec<(usize, usize, usize)> {
        let mut coefs = 0;
        let mut intercepts: usize = self
            .model
            .linear_layers()
            .map(|linear| linear.weights().len())
            .sum();
        self.model
            .linear_layers()
            .map(|linear| {
                let offsets = (coefs, intercepts, linear.out_features());
                coefs += linear.weights().len();
                intercepts += linear.out_features();
                offsets
            })
            .collect()
    }

    fn check_packed(&self, what: &'static str, len: usize) -> Result<(), SklearnError> {
        if len != self.packed_len() {
            return Err(SklearnError::DataShape {
                what,
                found: (len, 1),
                expected: format!("{} values", self.packed_len()),
            });
        }
        Ok(())
    }
}

/// scikit-learn's `_pack` of `(coefs (in, out), intercepts)` per layer, for tests.
#[doc(hidden)]
pub fn pack<F: Float>(parameters: &[(Array2<F>, Array1<F>)]) -> Vec<f64> {
    let coefs = parameters
        .iter()
        .flat_map(|(w, _)| w.iter().map(|&v| v.to_f64()));
    let intercepts = parameters
        .iter()
        .flat_map(|(_, b)| b.iter().map(|&v| v.to_f64()));
    coefs.chain(intercepts).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::ActivationKind;
    use crate::sklearn::Output;
    use ndarray::{Array1, Array2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, shape: (usize, usize), scale: f64) -> Array2<f64> {
        Array2::from_shape_fn(shape, |_| rng.random_range(-scale..scale))
    }

    /// A network `sizes` with random weights, and data of `rows` rows for `output`.
    fn setup(
        sizes: &[usize],
        rows: usize,
        output: Output,
    ) -> (SklearnMlp<f64>, Array2<f64>, Array2<f64>, Array1<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let parameters: Vec<(Array2<f64>, Array1<f64>)> = sizes
            .windows(2)
            .map(|pair| {
                let w = random(&mut rng, (pair[0], pair[1]), 0.8);
                let b = random(&mut rng, (1, pair[1]), 0.3).row(0).to_owned();
                (w, b)
            })
            .collect();
        let views: Vec<_> = parameters
            .iter()
            .map(|(w, b)| (w.view(), b.view()))
            .collect();
        let mlp = SklearnMlp::new(&views, ActivationKind::Tanh, output, false).unwrap();
        let outputs = sizes[sizes.len() - 1];
        let x = random(&mut rng, (rows, sizes[0]), 1.0);
        let targets = Array2::from_shape_fn((rows, outputs), |(row, column)| match output {
            Output::Softmax => f64::from(row % outputs == column),
            Output::Logistic => f64::from((row + column) % 3 == 0),
            Output::Identity => rng.random_range(-2.0..2.0),
            Output::Exp => f64::from(rng.random_range(0..4u8)),
        });
        let weights = Array1::from_shape_fn(rows, |_| rng.random_range(0.2..2.0));
        (mlp, x, targets, weights)
    }

    #[test]
    fn the_gradient_matches_finite_differences_for_every_output() {
        for output in [
            Output::Softmax,
            Output::Logistic,
            Output::Identity,
            Output::Exp,
        ] {
            // scikit-learn's squared error is averaged over the outputs but its gradient
            // is not (it is their sum's): they agree for one output.
            let outputs = if output == Output::Identity { 1 } else { 3 };
            let (mut mlp, x, targets, weights) = setup(&[3, 4, outputs], 11, output);
            let samples = Samples {
                x: x.view().into(),
                targets: targets.view(),
                weights: Some(weights.view()),
            };
            let alpha = 0.3;
            let point = pack(&mlp.parameters());
            let mut gradient = vec![0.0; point.len()];
            mlp.loss_and_gradient(&point, samples, alpha, &mut gradient)
                .unwrap();
            let mut scratch = vec![0.0; point.len()];
            for index in 0..point.len() {
                let h = 1e-6;
                let mut moved = point.clone();
                moved[index] += h;
                let up = mlp
                    .loss_and_gradient(&moved, samples, alpha, &mut scratch)
                    .unwrap();
                moved[index] -= 2.0 * h;
                let down = mlp
                    .loss_and_gradient(&moved, samples, alpha, &mut scratch)
                    .unwrap();
                let numeric = (up - down) / (2.0 * h);
                assert!(
                    (numeric - gradient[index]).abs() < 1e-7 * (1.0 + numeric.abs()),
                    "{output:?} parameter {index}: {numeric} by differences, {} computed",
                    gradient[index]
                );
            }
        }
    }

    #[test]
    fn chunks_add_up_to_the_loss_of_all_rows() {
        // More rows than one chunk: the loss is the whole data set's.
        let rows = CHUNK_ROWS + 37;
        let (mut mlp, x, targets, _) = setup(&[2, 3, 1], rows, Output::Identity);
        let point = pack(&mlp.parameters());
        let mut gradient = vec![0.0; point.len()];
        let samples = Samples::new(x.view(), targets.view());
        let alpha = 0.01;
        let loss = mlp
            .loss_and_gradient(&point, samples, alpha, &mut gradient)
            .unwrap();
        let outputs = mlp.predict_proba(x.view()).unwrap();
        let squares: f64 = mlp
            .parameters()
            .iter()
            .map(|(w, _)| w.iter().map(|v| v * v).sum::<f64>())
            .sum();
        let want = Output::Identity.loss(outputs.view(), targets.view(), None)
            + 0.5 * alpha * squares / rows as f64;
        assert!((loss - want).abs() < 1e-12 * want, "{loss} vs {want}");
        // The bias gradient of the identity output is the mean residual.
        let bias = gradient[gradient.len() - 1];
        let residual = (&outputs - &targets).sum() / rows as f64;
        assert!((bias - residual).abs() < 1e-12, "{bias} vs {residual}");
        // A vector of the wrong length is refused.
        assert!(mlp
            .loss_and_gradient(&point[1..], samples, alpha, &mut gradient)
            .is_err());
    }

    #[test]
    fn unpack_inverts_pack() {
        let (mut mlp, ..) = setup(&[3, 5, 2], 1, Output::Logistic);
        let packed: Vec<f64> = (0..mlp.packed_len()).map(|i| i as f64 * 0.5).collect();
        mlp.unpack(&packed).unwrap();
        assert_eq!(pack(&mlp.parameters()), packed);
        // scikit-learn's layout: coefs_[0] (3, 5) row-major first.
        assert_eq!(mlp.parameters()[0].0[[1, 0]], 2.5);
    }
}
