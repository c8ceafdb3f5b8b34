//! Central finite-difference checks of every analytic gradient, in f64.
//!
//! Each check compares the analytic gradient `a` with the numerical one `n` as the
//! relative error `|a - n| / (|a| + |n|)` over the whole array (Euclidean norms), which
//! must stay below 1e-6.

use nabla::layers::{Activation, ActivationKind as Kind, Linear};
use nabla::{
    ActivationKind, Init, Layer, MeanSquaredError, Module, MultiLayerPerceptron,
    SoftmaxCrossEntropy,
};
use ndarray::{array, Array2, ArrayView2, Zip};

use super::util::{assert_gradients_match, numerical_gradient, random_matrix};

/// `L = sum(output * weights)`: a scalar whose gradient w.r.t. the output is `weights`.
fn weighted_sum(output: ArrayView2<'_, f64>, weights: &Array2<f64>) -> f64 {
    Zip::from(&output)
        .and(weights)
        .fold(0.0, |acc, &y, &w| acc + y * w)
}

fn check_activation<M: Module<f64>>(name: &str, mut make: impl FnMut() -> M) {
    let x = random_matrix(4, 7, 2.0, 1);
    let upstream = random_matrix(4, 7, 1.0, 2);
    let mut layer = make();
    layer.forward(x.view());
    let analytic = layer.backward(upstream.view()).to_owned();
    let numerical = numerical_gradient(&x, |x| weighted_sum(make().forward(x.view()), &upstream));
    assert_gradients_match(&format!("{name} dL/dx"), analytic.view(), &numerical);
}

#[test]
fn sigmoid_gradient() {
    check_activation("sigmoid", || Activation::<f64>::new(Kind::Sigmoid));
}

#[test]
fn relu_gradient() {
    check_activation("relu", || Activation::<f64>::new(Kind::Relu));
}

#[test]
fn tanh_gradient() {
    check_activation("tanh", || Activation::<f64>::new(Kind::Tanh));
}

#[test]
fn linear_gradients() {
    let weights = random_matrix(4, 6, 1.0, 3);
    let bias = random_matrix(1, 4, 1.0, 4);
    let x = random_matrix(5, 6, 1.0, 5);
    let upstream = random_matrix(5, 4, 1.0, 6);
    let make =
        |w: &Array2<f64>, b: &Array2<f64>| Linear::from_params(w.clone(), b.row(0).to_owned());

    let mut layer = make(&weights, &bias);
    layer.forward(x.view());
    let grad_input = layer.backward(upstream.view()).to_owned();

    let numerical_x = numerical_gradient(&x, |x| {
        weighted_sum(make(&weights, &bias).forward(x.view()), &upstream)
    });
    assert_gradients_match("linear dL/dx", grad_input.view(), &numerical_x);
    let numerical_w = numerical_gradient(&weights, |w| {
        weighted_sum(make(w, &bias).forward(x.view()), &upstream)
    });
    assert_gradients_match("linear dL/dW", layer.d_weights().view(), &numerical_w);
    let numerical_b = numerical_gradient(&bias, |b| {
        weighted_sum(make(&weights, b).forward(x.view()), &upstream)
    });
    let d_bias = layer.d_bias().insert_axis(ndarray::Axis(0));
    assert_gradients_match("linear dL/db", d_bias, &numerical_b);
}

#[test]
fn softmax_cross_entropy_gradient() {
    let logits = random_matrix(5, 4, 3.0, 7);
    let labels = array![0usize, 3, 1, 1, 2];
    let mut loss = SoftmaxCrossEntropy::new();
    loss.forward(logits.view(), labels.view());
    let analytic = loss.backward().to_owned();
    let numerical = numerical_gradient(&logits, |z| {
        SoftmaxCrossEntropy::new().forward(z.view(), labels.view())
    });
    assert_gradients_match("cross-entropy dL/dz", analytic.view(), &numerical);
}

#[test]
fn mean_squared_error_gradient() {
    let prediction = random_matrix(5, 3, 2.0, 8);
    let target = random_matrix(5, 3, 2.0, 9);
    let mut loss = MeanSquaredError::new();
    loss.forward(prediction.view(), target.view());
    let analytic = loss.backward().to_owned();
    let numerical = numerical_gradient(&prediction, |p| {
        MeanSquaredError::new().forward(p.view(), target.view())
    });
    assert_gradients_match("mse dL/dp", analytic.view(), &numerical);
}

#[test]
fn mean_squared_error_value() {
    // (1/N) sum of squared errors: rows (1, 2) vs (0, 0) and (3, 0) vs (1, 0): (5 + 4) / 2.
    let value = MeanSquaredError::new().forward(
        array![[1.0, 2.0], [3.0, 0.0]].view(),
        array![[0.0, 0.0], [1.0, 0.0]].view(),
    );
    assert_eq!(value, 4.5);
}

#[test]
fn cross_entropy_is_finite_for_huge_logits() {
    let logits = array![[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4]];
    let labels = array![1usize, 0];
    let mut loss = SoftmaxCrossEntropy::<f64>::new();
    let value = loss.forward(logits.view(), labels.view());
    // Each row's true class is 2e4 below the maximum: the loss is 2e4 exactly.
    assert!((value - 2e4).abs() < 1e-9, "loss {value}");
    let gradient = loss.backward();
    assert!(gradient.iter().all(|g| g.is_finite()));
    assert_eq!(gradient[[0, 0]], 0.5);
    assert_eq!(gradient[[0, 1]], -0.5);

    let mut loss32 = SoftmaxCrossEntropy::<f32>::new();
    let value32 = loss32.forward(logits.mapv(|v| v as f32).view(), labels.view());
    assert!(
        value32.is_finite() && (value32 - 2e4).abs() < 1.0,
        "f32 loss {value32}"
    );
    assert!(loss32.backward().iter().all(|g| g.is_finite()));
}

#[test]
fn sigmoid_is_stable_for_any_magnitude() {
    let x = array![[-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4]];
    let y = Activation::<f64>::new(Kind::Sigmoid)
        .forward(x.view())
        .to_owned();
    assert!(
        y.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
        "{y}"
    );
    assert_eq!(y[[0, 3]], 0.5);
    assert!(y[[0, 2]] > 0.0 && y[[0, 2]] < 1e-12);
    let y32 = Activation::<f32>::new(Kind::Sigmoid)
        .forward(x.mapv(|v| v as f32).view())
        .to_owned();
    assert!(
        y32.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
        "{y32}"
    );
}

#[test]
fn relu_subgradient_at_zero_is_zero() {
    let mut relu = Activation::<f64>::new(Kind::Relu);
    relu.forward(array![[0.0, 1.0, -1.0]].view());
    let grad = relu.backward(array![[5.0, 5.0, 5.0]].view()).to_owned();
    assert_eq!(grad, array![[0.0, 5.0, 0.0]]);
}

#[test]
fn network_with_two_hidden_layers() {
    // 5 -> 4 (tanh) -> 3 (sigmoid) -> 3, cross-entropy on top.
    let sizes = [5, 4, 3, 3];
    let mut network =
        MultiLayerPerceptron::<f64>::from_sizes(&sizes, ActivationKind::Tanh, Init::Xavier, 11)
            .unwrap();
    network.layers_mut()[3] = Layer::activation(Kind::Sigmoid);
    // Non-zero biases, so that their gradients are exercised off the origin.
    for (index, linear) in network.linear_layers_mut().enumerate() {
        let bias = random_matrix(1, linear.out_features(), 0.5, 20 + index as u64);
        linear.bias_mut().assign(&bias.row(0));
    }
    let x = random_matrix(6, 5, 1.0, 12);
    let labels = array![0usize, 1, 2, 2, 1, 0];
    let objective = |network: &mut MultiLayerPerceptron<f64>| {
        SoftmaxCrossEntropy::new().forward(network.forward(x.view()), labels.view())
    };

    let mut loss = SoftmaxCrossEntropy::new();
    loss.forward(network.forward(x.view()), labels.view());
    network.backward(loss.backward());

    let layer_positions = [0, 2, 4];
    for position in layer_positions {
        let linear = network.layers()[position].as_linear().unwrap().clone();
        let numerical_w = numerical_gradient(&linear.weights().to_owned(), |w| {
            let mut probe = network.clone();
            probe.layers_mut()[position]
                .as_linear_mut()
                .unwrap()
                .weights_mut()
                .assign(w);
            objective(&mut probe)
        });
        assert_gradients_match(
            &format!("layer {position} dL/dW"),
            linear.d_weights().view(),
            &numerical_w,
        );
        let bias = linear.bias().to_owned().insert_axis(ndarray::Axis(0));
        let numerical_b = numerical_gradient(&bias, |b| {
            let mut probe = network.clone();
            probe.layers_mut()[position]
                .as_linear_mut()
                .unwrap()
                .bias_mut()
                .assign(&b.row(0));
            objective(&mut probe)
        });
        let d_bias = linear.d_bias().insert_axis(ndarray::Axis(0));
        assert_gradients_match(&format!("layer {position} dL/db"), d_bias, &numerical_b);
    }
}
