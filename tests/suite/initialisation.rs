//! Seeded initialisation: reproducible, seed-dependent, and the symmetry of zeros.

use nabla::{init, ActivationKind, Init, Module, MultiLayerPerceptron, Sgd, SoftmaxCrossEntropy};
use ndarray::{Array1, Array2, Axis};

use super::util::random_matrix;

fn first_weights(init: Init, seed: u64) -> Array2<f64> {
    let network =
        MultiLayerPerceptron::<f64>::from_sizes(&[20, 16, 4], ActivationKind::Relu, init, seed)
            .unwrap();
    let weights = network.linear_layers().next().unwrap().weights().to_owned();
    weights
}

#[test]
fn same_seed_gives_identical_weights_different_seed_does_not() {
    for scheme in Init::ALL
        .into_iter()
        .filter(|&scheme| scheme != Init::Zeros)
    {
        let a = first_weights(scheme, 10701);
        let b = first_weights(scheme, 10701);
        let c = first_weights(scheme, 10702);
        let bits = |m: &Array2<f64>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b), "{scheme}: same seed, different weights");
        assert_ne!(a, c, "{scheme}: different seeds, same weights");
        assert!(a.iter().any(|&v| v != 0.0));
    }
}

#[test]
fn f32_weights_are_the_rounded_f64_weights() {
    let w64 = first_weights(Init::Uniform, 3);
    let network = MultiLayerPerceptron::<f32>::from_sizes(
        &[20, 16, 4],
        ActivationKind::Relu,
        Init::Uniform,
        3,
    )
    .unwrap();
    let w32 = &network.linear_layers().next().unwrap().weights();
    assert_eq!(w64.mapv(|v| v as f32), *w32);
}

/// Sample mean, variance (about 0) and extremes of a matrix.
fn moments(w: &Array2<f64>) -> (f64, f64, f64, f64) {
    let n = w.len() as f64;
    let mean = w.sum() / n;
    let variance = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let min = w.iter().copied().fold(f64::INFINITY, f64::min);
    let max = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, variance, min, max)
}

/// Each scheme's distribution on a 256 x 784 matrix (200,704 draws): its range, and its
/// mean and variance within 5 standard errors of the scheme's own (a correct initialiser
/// fails a 5-sigma check with probability below 1e-6; the seed is fixed, so the test is
/// deterministic anyway). A wrong scale (1/in for 1/sqrt(in), fan_out for fan_in, a
/// variance of 1/in for 2/in) is off by tens of standard errors.
#[test]
fn schemes_have_their_distribution() {
    let (out, inputs) = (256, 784);
    let n = (out * inputs) as f64;
    let mut rng = init::rng(1);
    // Uniform on [-a, a): variance a^2/3; the sample variance's standard error is
    // a^2 sqrt(4 / (45 n)); the mean's is a / sqrt(3 n).
    let uniform_cases = [
        (Init::Uniform, 1.0 / (inputs as f64).sqrt()),
        (Init::Xavier, (6.0 / (inputs + out) as f64).sqrt()),
    ];
    for (scheme, limit) in uniform_cases {
        let w: Array2<f64> = init::weights(scheme, out, inputs, &mut rng);
        let (mean, variance, min, max) = moments(&w);
        assert!(
            min >= -limit && max < limit,
            "{scheme}: outside [-{limit}, {limit})"
        );
        assert!(
            min < -0.999 * limit && max > 0.999 * limit,
            "{scheme}: does not fill its range ({min}, {max})"
        );
        let mean_error = limit / (3.0 * n).sqrt();
        assert!(mean.abs() < 5.0 * mean_error, "{scheme}: mean {mean}");
        let expected = limit * limit / 3.0;
        let variance_error = limit * limit * (4.0 / (45.0 * n)).sqrt();
        assert!(
            (variance - expected).abs() < 5.0 * variance_error,
            "{scheme}: variance {variance}, expected {expected} +- {variance_error}"
        );
    }
    // He: N(0, 2/in); the sample variance's standard error is sigma^2 sqrt(2/n), and the
    // fraction within one sigma is 0.6827 with standard error sqrt(p (1-p) / n).
    let w: Array2<f64> = init::weights(Init::He, out, inputs, &mut rng);
    let (mean, variance, _, _) = moments(&w);
    let sigma2 = 2.0 / inputs as f64;
    assert!(mean.abs() < 5.0 * (sigma2 / n).sqrt(), "he: mean {mean}");
    assert!(
        (variance - sigma2).abs() < 5.0 * sigma2 * (2.0 / n).sqrt(),
        "he: variance {variance}, expected {sigma2}"
    );
    let within = w.iter().filter(|v| v.abs() < sigma2.sqrt()).count() as f64 / n;
    let p = 0.682_689_492;
    assert!(
        (within - p).abs() < 5.0 * (p * (1.0 - p) / n).sqrt(),
        "he: {within} within one sigma"
    );
    // Zeros: all zero.
    let w: Array2<f64> = init::weights(Init::Zeros, out, inputs, &mut rng);
    assert!(w.iter().all(|&v| v == 0.0));
}

#[test]
fn orthogonal_rows_or_columns_are_orthonormal() {
    let mut rng = init::rng(5);
    for (rows, cols) in [(8, 8), (16, 5), (5, 16)] {
        let w: Array2<f64> = init::weights(Init::Orthogonal, rows, cols, &mut rng);
        let gram = if rows >= cols {
            w.t().dot(&w)
        } else {
            w.dot(&w.t())
        };
        let identity = Array2::<f64>::eye(rows.min(cols));
        let error = (&gram - &identity)
            .mapv(f64::abs)
            .fold(0.0, |m: f64, &v| m.max(v));
        assert!(
            error < 1e-12,
            "({rows}, {cols}): W W^T differs from I by {error}"
        );
    }
}

#[test]
fn zero_initialisation_keeps_hidden_units_identical() {
    // The assignment's question on initialisation: with all-zero weights every hidden
    // unit computes the same function and receives the same gradient, forever.
    let mut network = MultiLayerPerceptron::<f64>::from_sizes(
        &[12, 6, 3],
        ActivationKind::Sigmoid,
        Init::Zeros,
        1,
    )
    .unwrap();
    let x = random_matrix(10, 12, 1.0, 2);
    let labels: Array1<usize> = (0..10).map(|i| i % 3).collect();
    let mut loss = SoftmaxCrossEntropy::new();
    let mut optimizer = Sgd::new(0.5);
    for _ in 0..5 {
        loss.forward(network.forward(x.view()), labels.view());
        network.backward(loss.backward());
        optimizer.step(&mut network);
    }
    let hidden = network.linear_layers().next().unwrap();
    assert!(
        hidden.weights().iter().any(|&w| w != 0.0),
        "the weights did move"
    );
    // Identical up to rounding: OpenBLAS may sum the same products in another order for
    // different output positions, so rows can differ in the last bit, never more.
    let weights = hidden.weights();
    let first_row = weights.row(0);
    for row in hidden.weights().axis_iter(Axis(0)) {
        let spread = (&row - &first_row)
            .mapv(f64::abs)
            .fold(0.0, |m: f64, &v| m.max(v));
        assert!(spread < 1e-15, "hidden units diverged by {spread}");
    }
    let bias_spread = hidden
        .bias()
        .iter()
        .map(|b| (b - hidden.bias()[0]).abs())
        .fold(0.0, f64::max);
    assert!(
        bias_spread < 1e-15,
        "hidden biases diverged by {bias_spread}"
    );
}
