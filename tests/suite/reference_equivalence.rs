//! The BLAS + rayon path against the plain-loop reference (`nabla::reference`).

use nabla::layers::{Activation, ActivationKind as Kind, Linear};
use nabla::reference::{self, ReferenceMlp};
use nabla::{
    ActivationKind, Init, MeanSquaredError, Module, MultiLayerPerceptron, Sgd, SoftmaxCrossEntropy,
};
use ndarray::{Array1, Array2};

use super::util::{max_abs_difference, random_matrix};

/// (batch, in, out): batch 1, odd sizes, and sizes large enough for BLAS and rayon.
const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (1, 13, 7),
    (3, 5, 2),
    (17, 31, 9),
    (50, 784, 33),
    (129, 65, 257),
];

#[test]
fn linear_matches_reference() {
    for (seed, &(batch, inputs, outputs)) in SHAPES.iter().enumerate() {
        let seed = seed as u64 * 10;
        let weights = random_matrix(outputs, inputs, 1.0, seed);
        let bias = random_matrix(1, outputs, 1.0, seed + 1).row(0).to_owned();
        let x = random_matrix(batch, inputs, 1.0, seed + 2);
        let upstream = random_matrix(batch, outputs, 1.0, seed + 3);
        let mut layer = Linear::from_params(weights.clone(), bias.clone());
        let y = layer.forward(x.view()).to_owned();
        let grad_input = layer.backward(upstream.view()).to_owned();
        let expected = reference::linear_backward(x.view(), weights.view(), upstream.view());
        let tolerance = 1e-12 * inputs.max(batch) as f64;
        let shape = format!("{batch}x{inputs}->{outputs}");
        assert!(
            max_abs_difference(
                &y,
                &reference::linear_forward(x.view(), weights.view(), bias.view())
            ) < tolerance,
            "forward {shape}"
        );
        assert!(
            max_abs_difference(&layer.d_weights(), &expected.d_weights) < tolerance,
            "d_weights {shape}"
        );
        assert!(
            max_abs_difference(&grad_input, &expected.grad_input) < tolerance,
            "grad_input {shape}"
        );
        let d_bias = (&layer.d_bias() - &expected.d_bias)
            .mapv(f64::abs)
            .fold(0.0, |m: f64, &v| m.max(v));
        assert!(d_bias < tolerance, "d_bias {shape}");
    }
}

#[test]
fn f32_linear_matches_reference_on_many_shapes() {
    // The sgemm path (whatever kernel OpenBLAS picks on this CPU) against plain loops in
    // f64, for the shapes training uses and odd ones around them.
    let shapes = [
        (1, 784, 256),
        (50, 784, 256),
        (37, 784, 256),
        (50, 256, 10),
        (256, 784, 10),
        (1000, 256, 384),
        (7, 33, 65),
        (64, 64, 64),
        (3, 1, 5),
    ];
    for (seed, (batch, inputs, outputs)) in shapes.into_iter().enumerate() {
        let seed = seed as u64 * 7;
        let weights = random_matrix(outputs, inputs, 1.0, seed);
        let x = random_matrix(batch, inputs, 1.0, seed + 1);
        let upstream = random_matrix(batch, outputs, 1.0, seed + 2);
        let bias = random_matrix(1, outputs, 1.0, seed + 3).row(0).to_owned();
        let mut layer =
            Linear::<f32>::from_params(weights.mapv(|v| v as f32), bias.mapv(|v: f64| v as f32));
        let y = layer.forward(x.mapv(|v| v as f32).view()).mapv(f64::from);
        let grad_input = layer
            .backward(upstream.mapv(|v| v as f32).view())
            .mapv(f64::from);
        // Expected values from the f32-rounded inputs, summed in f64.
        let (w32, x32, g32) = (
            weights.mapv(|v| v as f32 as f64),
            x.mapv(|v| v as f32 as f64),
            upstream.mapv(|v| v as f32 as f64),
        );
        let expected = reference::linear_backward(x32.view(), w32.view(), g32.view());
        let tolerance = 2e-6 * (inputs.max(batch).max(outputs) as f64).sqrt() * 4.0;
        let shape = format!("{batch}x{inputs}->{outputs}");
        let b32 = bias.mapv(|v| v as f32 as f64);
        let forward = reference::linear_forward(x32.view(), w32.view(), b32.view());
        assert!(
            max_abs_difference(&y, &forward) < tolerance,
            "f32 forward {shape}: {}",
            max_abs_difference(&y, &forward)
        );
        let d_weights = layer.d_weights().mapv(f64::from);
        assert!(
            max_abs_difference(&d_weights, &expected.d_weights) < tolerance,
            "f32 d_weights {shape}"
        );
        assert!(
            max_abs_difference(&grad_input, &expected.grad_input) < tolerance,
            "f32 grad_input {shape}"
        );
        let d_bias = layer.d_bias().mapv(f64::from);
        let worst = (&d_bias - &expected.d_bias)
            .mapv(f64::abs)
            .fold(0.0, |m: f64, &v| m.max(v));
        assert!(worst < tolerance, "f32 d_bias {shape}: {worst}");
    }
}

#[test]
fn naive_matmul_matches_nablas_gemm() {
    // nabla's own GEMM entry (the one every layer calls), beta = 0 and beta = 1.
    let a = random_matrix(37, 53, 1.0, 1);
    let b = random_matrix(53, 29, 1.0, 2);
    let expected = reference::matmul_naive(a.view(), b.view());
    let mut c = Array2::from_elem((37, 29), f64::NAN);
    nabla::gemm::gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
    assert!(max_abs_difference(&c, &expected) < 1e-12);
    let start = random_matrix(37, 29, 1.0, 3);
    let mut c = start.clone();
    nabla::gemm::gemm(2.0, a.view(), b.view(), 1.0, c.view_mut());
    assert!(max_abs_difference(&c, &(&expected * 2.0 + &start)) < 1e-12);
}

fn check_activation<M: Module<f64>>(kind: ActivationKind, mut layer: M) {
    // Sizes on both sides of the rayon threshold.
    for (rows, cols) in [(1, 1), (3, 7), (300, 257)] {
        let x = random_matrix(rows, cols, 4.0, rows as u64);
        let upstream = random_matrix(rows, cols, 1.0, cols as u64);
        let y = layer.forward(x.view()).to_owned();
        let expected_y = reference::activation_forward(kind, x.view());
        assert!(
            max_abs_difference(&y, &expected_y) < 1e-15,
            "{kind} forward {rows}x{cols}"
        );
        let grad = layer.backward(upstream.view()).to_owned();
        let expected_grad =
            reference::activation_backward(kind, expected_y.view(), upstream.view());
        assert!(
            max_abs_difference(&grad, &expected_grad) < 1e-15,
            "{kind} backward {rows}x{cols}"
        );
    }
}

#[test]
fn activations_match_reference() {
    check_activation(ActivationKind::Sigmoid, Activation::new(Kind::Sigmoid));
    check_activation(ActivationKind::Relu, Activation::new(Kind::Relu));
    check_activation(ActivationKind::Tanh, Activation::new(Kind::Tanh));
}

#[test]
fn losses_match_reference() {
    let mut cross_entropy = SoftmaxCrossEntropy::new();
    let mut squared = MeanSquaredError::new();
    for (rows, cols) in [(1, 1), (1, 10), (7, 3), (5000, 10)] {
        let logits = random_matrix(rows, cols, 5.0, rows as u64);
        let labels: Array1<usize> = (0..rows).map(|i| (i * 7) % cols).collect();
        let (expected_loss, expected_grad) =
            reference::softmax_cross_entropy(logits.view(), labels.view());
        let loss = cross_entropy.forward(logits.view(), labels.view());
        assert!(
            (loss - expected_loss).abs() < 1e-12,
            "cross-entropy {rows}x{cols}"
        );
        assert!(max_abs_difference(&cross_entropy.backward().to_owned(), &expected_grad) < 1e-15);

        let target = random_matrix(rows, cols, 1.0, 99);
        let (expected_loss, expected_grad) =
            reference::mean_squared_error(logits.view(), target.view());
        let loss = squared.forward(logits.view(), target.view());
        assert!(
            (loss - expected_loss).abs() < 1e-9 * expected_loss.abs().max(1.0),
            "mse {rows}x{cols}"
        );
        assert!(max_abs_difference(&squared.backward().to_owned(), &expected_grad) < 1e-14);
    }
}

/// Trains the same network for a few odd-sized batches both ways.
#[test]
fn training_steps_match_reference() {
    for activation in ActivationKind::ALL {
        let mut network =
            MultiLayerPerceptron::<f64>::from_sizes(&[23, 19, 11, 5], activation, Init::Uniform, 4)
                .unwrap();
        let mut reference = ReferenceMlp {
            weights: network
                .linear_layers()
                .map(|l| l.weights().to_owned())
                .collect(),
            biases: network
                .linear_layers()
                .map(|l| l.bias().to_owned())
                .collect(),
            activation,
        };
        network.set_compute_grad_input(false);
        let mut loss = SoftmaxCrossEntropy::new();
        let mut optimizer = Sgd::new(0.3);
        for (step, batch) in [7usize, 1, 13, 7].into_iter().enumerate() {
            let x = random_matrix(batch, 23, 1.0, 100 + step as u64);
            let labels: Array1<usize> = (0..batch).map(|i| (i + step) % 5).collect();
            let value = loss.forward(network.forward(x.view()), labels.view());
            network.backward(loss.backward());
            optimizer.step(&mut network);
            let expected = reference.train_batch(x.view(), labels.view(), 0.3);
            assert!(
                (value - expected).abs() < 1e-12,
                "{activation} step {step}: loss {value} vs {expected}"
            );
        }
        let layers = network
            .linear_layers()
            .zip(reference.weights.iter().zip(&reference.biases));
        for (linear, (weights, bias)) in layers {
            let difference: f64 = max_abs_difference(&linear.weights(), weights as &Array2<f64>);
            assert!(
                difference < 1e-12,
                "{activation}: weights differ by {difference}"
            );
            let difference = (&linear.bias() - bias)
                .mapv(f64::abs)
                .fold(0.0, |m: f64, &v| m.max(v));
            assert!(
                difference < 1e-12,
                "{activation}: biases differ by {difference}"
            );
        }
    }
}
