//! The assignment's worked example: a 6-4-3 network with a sigmoid hidden layer and a
//! softmax output. Every expected value below is the assignment's own worked answer,
//! quoted to 4 decimal places.

use nabla::layers::{Activation, ActivationKind as Kind, Linear};
use nabla::{Layer, Module, MultiLayerPerceptron, Sgd, SoftmaxCrossEntropy};
use ndarray::{array, s, Array2};

use nabla::reference::ReferenceMlp;

use super::util::{assert_close, assert_gradients_match, max_abs_difference, numerical_gradient};

/// alpha (4 x 7) and beta (3 x 5), each with the bias in column 0.
fn assignment_weights() -> (Array2<f64>, Array2<f64>) {
    let alpha = array![
        [1., 1., 2., -3., 0., 1., -3.],
        [1., 2., 1., 1., 1., 0., 2.],
        [1., 3., 2., 2., 2., 2., 1.],
        [1., 2., 0., 3., 1., -2., 2.]
    ];
    let beta = array![
        [1., 1., 2., -2., 3.],
        [1., 2., -1., 3., 1.],
        [1., 3., 1., -1., 1.]
    ];
    (alpha, beta)
}

fn linear_from_bias_first<F: nabla::Float>(matrix: &Array2<f64>) -> Linear<F> {
    Linear::from_params(
        matrix.slice(s![.., 1..]).mapv(F::from_f64),
        matrix.column(0).mapv(F::from_f64),
    )
}

fn check_worked_example<F: nabla::Float>(tolerance: f64) {
    let (alpha, beta) = assignment_weights();
    let mut hidden = linear_from_bias_first::<F>(&alpha);
    let mut sigmoid = Activation::<F>::new(Kind::Sigmoid);
    let mut output = linear_from_bias_first::<F>(&beta);
    let mut loss = SoftmaxCrossEntropy::<F>::new();
    let x = array![[1., 0., 1., 0., 1., 1.]].mapv(F::from_f64);
    let label = array![2usize];

    // Forward, value by value.
    let a = hidden.forward(x.view()).to_owned();
    assert_close("a1", a[[0, 0]].to_f64(), -3.0, 1e-12);
    let z = sigmoid.forward(a.view()).to_owned();
    assert_close("z1", z[[0, 0]].to_f64(), 0.0474, 5e-5);
    let b = output.forward(z.view()).to_owned();
    assert_close("b2", b[[0, 1]].to_f64(), 4.0945, 5e-5);
    let value = loss.forward(b.view(), label.view());
    assert_close("yhat2", loss.probabilities()[[0, 1]].to_f64(), 0.4799, 5e-5);
    assert_close("loss", value.to_f64(), 2.6912, 5e-5 + tolerance);

    // Backward, then one step with learning rate 1.
    let grad_logits = loss.backward().to_owned();
    let grad_z = output.backward(grad_logits.view()).to_owned();
    let grad_a = sigmoid.backward(grad_z.view()).to_owned();
    hidden.backward(grad_a.view());

    // The whole hidden-layer gradient, against the plain-loop reference of the same
    // network (its own forward and backward, no BLAS).
    let reference = ReferenceMlp {
        weights: vec![
            alpha.slice(s![.., 1..]).to_owned(),
            beta.slice(s![.., 1..]).to_owned(),
        ],
        biases: vec![alpha.column(0).to_owned(), beta.column(0).to_owned()],
        activation: Kind::Sigmoid,
    };
    let (_, expected) = reference.gradients(x.mapv(|v| v.to_f64()).view(), label.view());
    let widen2 = |m: ndarray::ArrayView2<'_, F>| m.mapv(|v| v.to_f64());
    let widen1 = |v: ndarray::ArrayView1<'_, F>| v.mapv(|v| v.to_f64());
    let close = 1e-12 + tolerance;
    assert!(max_abs_difference(&widen2(hidden.d_weights()), &expected[0].d_weights) <= close);
    assert!(max_abs_difference(&widen2(output.d_weights()), &expected[1].d_weights) <= close);
    for (found, wanted) in [
        (widen1(hidden.d_bias()), &expected[0].d_bias),
        (widen1(output.d_bias()), &expected[1].d_bias),
    ] {
        let worst = (&found - wanted)
            .mapv(f64::abs)
            .fold(0.0, |m: f64, &v| m.max(v));
        assert!(worst <= close, "d_bias off by {worst}");
    }
    // ... and not zero: every hidden unit whose input x_j is 1 gets a gradient.
    assert!(hidden.d_weights().column(0).iter().all(|&g| g != F::zero()));
    // grad_a = dL/d(hidden pre-activation), the reference's input gradient of layer 2
    // through the sigmoid: d_bias of the hidden layer is exactly grad_a (one row).
    assert!(
        max_abs_difference(
            &widen2(grad_a.view()),
            &expected[0].d_bias.clone().insert_axis(ndarray::Axis(0))
        ) <= close
    );

    let mut optimizer = Sgd::new(F::one());
    optimizer.step(&mut output);
    optimizer.step(&mut hidden);
    // beta(2,1) and beta(1,0), 1-based rows, column 0 = bias.
    assert_close("beta(2,1)", output.weights()[[1, 0]].to_f64(), 1.9772, 5e-5);
    assert_close("beta(1,0)", output.bias()[0].to_f64(), 0.5477, 5e-5);
    // alpha(3,4): its input x_4 is 0, so the weight does not move.
    assert_close("alpha(3,4)", hidden.weights()[[2, 3]].to_f64(), 2.0, 1e-12);
    // The whole updated alpha (learning rate 1): alpha - dL/d(alpha), every entry.
    let updated = &reference.weights[0] - &expected[0].d_weights;
    assert!(max_abs_difference(&widen2(hidden.weights()), &updated) <= close);
    let updated_bias = &reference.biases[0] - &expected[0].d_bias;
    let worst = (&widen1(hidden.bias()) - &updated_bias)
        .mapv(f64::abs)
        .fold(0.0, |m: f64, &v| m.max(v));
    assert!(worst <= close, "alpha's bias column off by {worst}");
}

#[test]
fn worked_example_hidden_gradient_matches_finite_differences() {
    // dL/d(alpha) of the worked example by central differences over all 4 x 7 entries
    // (bias column included), against the analytic gradient of the network.
    let (alpha, beta) = assignment_weights();
    let x = array![[1., 0., 1., 0., 1., 1.]];
    let label = array![2usize];
    let loss_at = |alpha: &Array2<f64>| {
        let mut network = MultiLayerPerceptron::new(vec![
            linear_from_bias_first::<f64>(alpha).into(),
            Layer::activation(Kind::Sigmoid),
            linear_from_bias_first::<f64>(&beta).into(),
        ])
        .unwrap();
        SoftmaxCrossEntropy::new().forward(network.forward(x.view()), label.view())
    };
    let numerical = numerical_gradient(&alpha, loss_at);
    let mut network = MultiLayerPerceptron::new(vec![
        linear_from_bias_first::<f64>(&alpha).into(),
        Layer::activation(Kind::Sigmoid),
        linear_from_bias_first::<f64>(&beta).into(),
    ])
    .unwrap();
    let mut loss = SoftmaxCrossEntropy::new();
    loss.forward(network.forward(x.view()), label.view());
    network.backward(loss.backward());
    let hidden = network.layers()[0].as_linear().unwrap();
    let mut analytic = Array2::zeros((4, 7));
    analytic.column_mut(0).assign(&hidden.d_bias());
    analytic.slice_mut(s![.., 1..]).assign(&hidden.d_weights());
    assert_gradients_match("worked example dL/d(alpha)", analytic.view(), &numerical);
    // Columns 2 and 4 (1-based: x_2 = x_4 = 0) have zero gradient; the others do not.
    for column in 0..7 {
        let zero = analytic.column(column).iter().all(|&g| g == 0.0);
        assert_eq!(
            zero,
            column == 2 || column == 4,
            "column {column}: {analytic}"
        );
    }
}

#[test]
fn worked_example_f64() {
    check_worked_example::<f64>(0.0);
}

#[test]
fn worked_example_f32() {
    check_worked_example::<f32>(1e-5);
}

#[test]
fn worked_example_through_the_network() {
    let (alpha, beta) = assignment_weights();
    let layers: Vec<Layer<f64>> = vec![
        linear_from_bias_first(&alpha).into(),
        Layer::activation(Kind::Sigmoid),
        linear_from_bias_first(&beta).into(),
    ];
    let mut network = MultiLayerPerceptron::new(layers).unwrap();
    let x = array![[1., 0., 1., 0., 1., 1.]];
    // Predicted class 2 (1-based), index 1.
    assert_eq!(network.predict(x.view()).to_vec(), vec![1]);
    let mut loss = SoftmaxCrossEntropy::new();
    let value = loss.forward(network.forward(x.view()), array![2usize].view());
    assert_close("loss", value, 2.6912, 5e-5);
    network.backward(loss.backward());
    Sgd::new(1.0).step(&mut network);
    let output = network.layers()[2].as_linear().unwrap();
    assert_close("beta(2,1)", output.weights()[[1, 0]], 1.9772, 5e-5);
    assert_close("beta(1,0)", output.bias()[0], 0.5477, 5e-5);
}
