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
fn weights_do_not_depend_on_the_thread_count() {
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let in_pool = single.install(|| first_weights(Init::Uniform, 7));
    assert_eq!(in_pool, first_weights(Init::Uniform, 7));
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

#[test]
fn schemes_have_their_scale() {
    let mut rng = init::rng(1);
    let uniform: Array2<f64> = init::weights(Init::Uniform, 64, 100, &mut rng);
    assert!(uniform.iter().all(|v| v.abs() <= 0.1));
    let xavier: Array2<f64> = init::weights(Init::Xavier, 64, 100, &mut rng);
    let limit = (6.0f64 / 164.0).sqrt();
    assert!(xavier.iter().all(|v| v.abs() <= limit));
    let he: Array2<f64> = init::weights(Init::He, 200, 300, &mut rng);
    let variance = he.mapv(|v| v * v).mean().unwrap();
    assert!(
        (variance - 2.0 / 300.0).abs() < 0.1 * 2.0 / 300.0,
        "He variance {variance}"
    );
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
