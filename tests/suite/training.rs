//! `train_network` against a hand-computed example, and its extensions.

use nabla::data::{Dataset, Features};
use nabla::reference::{ReferenceMlp, ReferenceSgd};
use nabla::train::{self, Setting, TrainConfig, TrainError};
use nabla::{
    ActivationKind, Init, Layer, Linear, Module, MultiLayerPerceptron, Sgd, SoftmaxCrossEntropy,
};
use ndarray::{array, s, Array1, Array2};

use super::util::{assert_close, random_matrix};

/// Three rows, two features, two classes.
fn tiny_dataset() -> Dataset<f64> {
    let x = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
    let y = array![0usize, 1, 1];
    Dataset::new(
        Features::Dense(x.clone()),
        y.clone(),
        Features::Dense(x),
        y,
        2,
    )
    .unwrap()
}

#[test]
fn two_batches_by_hand() {
    // One linear layer from zero weights, batch size 2 (a batch of 2, then of 1), lr 0.5.
    // Batch 1: p = 1/2 everywhere, gradient (p - onehot)/2 = [[-1/4, 1/4], [1/4, -1/4]],
    //   dW = [[-1/4, 1/4], [1/4, -1/4]], db = 0  =>  W = [[1/8, -1/8], [-1/8, 1/8]].
    // Batch 2 (row [1, 1], label 1): logits 0, p = 1/2, gradient [1/2, -1/2],
    //   dW = [[1/2, 1/2], [-1/2, -1/2]], db = [1/2, -1/2]
    //   =>  W = [[-1/8, -3/8], [1/8, 3/8]], b = [-1/4, 1/4].
    let linear = Linear::from_params(Array2::zeros((2, 2)), Array1::zeros(2));
    let mut model = MultiLayerPerceptron::new(vec![Layer::Linear(linear)]).unwrap();
    let history = train::train_network(&mut model, &tiny_dataset(), 1, 0.5, 2, 0).unwrap();
    let trained = model.linear_layers().next().unwrap();
    assert_eq!(trained.weights(), array![[-0.125, -0.375], [0.125, 0.375]]);
    assert_eq!(trained.bias(), array![-0.25, 0.25]);
    // Logit margins (class 1 minus class 0) are 0.75, 1.25 and 1.5: rows 2 and 3 right.
    let expected_loss =
        ((1.0 + 0.75f64.exp()).ln() + (1.0 + (-1.25f64).exp()).ln() + (1.0 + (-1.5f64).exp()).ln())
            / 3.0;
    let epoch = &history.epochs[0];
    assert_close("train loss", epoch.train.loss, expected_loss, 1e-15);
    assert_close("train accuracy", epoch.train.accuracy, 2.0 / 3.0, 1e-15);
    assert_close("error rate", epoch.train.error_rate(), 1.0 / 3.0, 1e-15);
    assert_eq!(history.train_predictions.to_vec(), vec![1, 1, 1]);
}

fn small_mnist_like(rows: usize, seed: u64) -> Dataset<f64> {
    let x = random_matrix(rows, 12, 1.0, seed);
    let y: Array1<usize> = x
        .rows()
        .into_iter()
        .map(|row| usize::from(row.sum() > 0.0) + usize::from(row[0] > 0.5))
        .collect();
    Dataset::new(
        Features::Dense(x.clone()),
        y.clone(),
        Features::Dense(x),
        y,
        3,
    )
    .unwrap()
}

fn model(seed: u64) -> MultiLayerPerceptron<f64> {
    MultiLayerPerceptron::from_sizes(&[12, 16, 3], ActivationKind::Relu, Init::Uniform, seed)
        .unwrap()
}

#[test]
fn training_learns_and_is_deterministic() {
    let data = small_mnist_like(300, 1);
    let (mut a, mut b) = (model(3), model(3));
    let first = train::train_network(&mut a, &data, 20, 0.1, 16, 0).unwrap();
    let second = train::train_network(&mut b, &data, 20, 0.1, 16, 0).unwrap();
    assert_eq!(first.epochs.len(), 20);
    assert_eq!(first.train_predictions, second.train_predictions);
    let losses = |h: &train::History| h.epochs.iter().map(|e| e.train.loss).collect::<Vec<_>>();
    assert_eq!(losses(&first), losses(&second));
    assert!(
        first.epochs[19].train.loss < 0.6 * first.epochs[0].train.loss,
        "{:?}",
        losses(&first)
    );
}

#[test]
fn shuffling_is_seeded() {
    let data = small_mnist_like(200, 2);
    let run = |shuffle: bool, seed: u64| {
        let mut config = TrainConfig::new(3, 0.1, 10, seed);
        config.shuffle = shuffle;
        let mut network = model(5);
        let history = train::train_with(&mut network, &data, &config, &mut ()).unwrap();
        history
            .epochs
            .iter()
            .map(|e| e.train.loss)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(true, 1), run(true, 1));
    assert_ne!(run(true, 1), run(true, 2));
    assert_ne!(run(true, 1), run(false, 1));
}

/// The largest difference between the network's parameters and the reference's,
/// relative to the largest parameter.
fn relative_difference(network: &MultiLayerPerceptron<f64>, reference: &ReferenceMlp<f64>) -> f64 {
    let mut difference: f64 = 0.0;
    let mut scale: f64 = 0.0;
    let layers = network
        .linear_layers()
        .zip(reference.weights.iter().zip(&reference.biases));
    for (linear, (weights, bias)) in layers {
        for (&a, &b) in linear
            .weights()
            .iter()
            .zip(weights)
            .chain(linear.bias().iter().zip(bias))
        {
            difference = difference.max((a - b).abs());
            scale = scale.max(b.abs());
        }
    }
    difference / scale
}

fn reference_of(
    network: &MultiLayerPerceptron<f64>,
    activation: ActivationKind,
) -> ReferenceMlp<f64> {
    ReferenceMlp {
        weights: network
            .linear_layers()
            .map(|l| l.weights().to_owned())
            .collect(),
        biases: network
            .linear_layers()
            .map(|l| l.bias().to_owned())
            .collect(),
        activation,
    }
}

#[test]
fn sgd_variants_match_the_plain_loop_formulas() {
    // 67 rows in batches of 10 (the last has 7), 3 epochs: weight decay on weights only as
    // 2*lambda*W, heavy-ball and Nesterov momentum as torch.optim.SGD defines them. The
    // first case (no momentum) takes the fused GEMM update inside train_with.
    let data = small_mnist_like(67, 6);
    let x = data.train_x.to_dense();
    for (momentum, weight_decay, nesterov) in [
        (0.0, 0.05, false),
        (0.9, 0.0, false),
        (0.9, 0.05, false),
        (0.5, 0.02, true),
    ] {
        let setting =
            format!("momentum {momentum}, weight decay {weight_decay}, nesterov {nesterov}");
        let mut network = model(7);
        let mut reference = reference_of(&network, ActivationKind::Relu);
        let mut config = TrainConfig::new(3, 0.1, 10, 0);
        config.momentum = momentum;
        config.weight_decay = weight_decay;
        config.nesterov = nesterov;
        train::train_with(&mut network, &data, &config, &mut ()).unwrap();

        // The same steps through backward + Sgd::step (never fused) ...
        let mut unfused = model(7);
        let mut optimizer = Sgd::new(0.1)
            .with_momentum(momentum)
            .with_weight_decay(weight_decay)
            .with_nesterov(nesterov);
        unfused.set_compute_grad_input(false);
        let mut loss = SoftmaxCrossEntropy::new();
        // ... and through the plain-loop reference.
        let mut reference_sgd = ReferenceSgd {
            momentum,
            weight_decay,
            nesterov,
            ..ReferenceSgd::new(0.1)
        };
        for _epoch in 0..3 {
            for start in (0..67).step_by(10) {
                let end = (start + 10).min(67);
                let (rows, labels) = (
                    x.slice(s![start..end, ..]),
                    data.train_y.slice(s![start..end]),
                );
                loss.forward(unfused.forward(rows), labels);
                unfused.backward(loss.backward());
                optimizer.step(&mut unfused);
                let (_, gradients) = reference.gradients(rows, labels);
                reference_sgd.step(&mut reference, &gradients);
            }
        }
        let trained = relative_difference(&network, &reference);
        assert!(
            trained < 1e-12,
            "{setting}: train_with differs from the reference by {trained:e}"
        );
        let stepped = relative_difference(&unfused, &reference);
        assert!(
            stepped < 1e-12,
            "{setting}: Sgd::step differs from the reference by {stepped:e}"
        );
        // The trajectory really depends on the setting: a plain run ends elsewhere.
        let mut plain = model(7);
        train::train_network(&mut plain, &data, 3, 0.1, 10, 0).unwrap();
        assert!(
            relative_difference(&plain, &reference) > 1e-4,
            "{setting}: no effect"
        );
    }
}

#[test]
fn divergence_names_epoch_and_batch_and_keeps_history() {
    let data = small_mnist_like(100, 4);
    let mut network = model(2);
    let error = train::train_network(&mut network, &data, 50, 1e30, 10, 0).unwrap_err();
    let TrainError::Diverged { epoch, batch, .. } = error else {
        panic!("expected divergence, got {error}");
    };
    assert!(batch >= 1);
    assert!(
        error
            .to_string()
            .contains(&format!("epoch {epoch}, batch {batch}")),
        "{error}"
    );
}

#[test]
fn training_leaves_the_input_gradient_setting_as_it_was() {
    let data = small_mnist_like(20, 8);
    let mut network = model(1);
    assert!(network.computes_grad_input());
    train::train_network(&mut network, &data, 1, 0.1, 10, 0).unwrap();
    assert!(
        network.computes_grad_input(),
        "training skips the first layer's input gradient only while it runs"
    );
}

#[test]
fn bad_settings_and_mismatched_models_are_refused() {
    let data = small_mnist_like(10, 5);
    for (config, name) in [
        (TrainConfig::new(0, 0.1, 1, 0), Setting::Epochs),
        (TrainConfig::new(1, 0.0, 1, 0), Setting::Lr),
        (TrainConfig::new(1, f64::NAN, 1, 0), Setting::Lr),
        (TrainConfig::new(1, 0.1, 0, 0), Setting::BatchSize),
        (
            TrainConfig {
                momentum: 1.0,
                ..TrainConfig::new(1, 0.1, 1, 0)
            },
            Setting::Momentum,
        ),
        (
            TrainConfig {
                weight_decay: -1.0,
                ..TrainConfig::new(1, 0.1, 1, 0)
            },
            Setting::WeightDecay,
        ),
    ] {
        let error = train::train_with(&mut model(1), &data, &config, &mut ()).unwrap_err();
        assert!(
            matches!(error, TrainError::InvalidSetting { setting, .. } if setting == name),
            "{error}"
        );
    }
    // A learning rate that is positive in f64 but rounds to zero in f32.
    let tiny = Dataset::<f32>::new(
        Features::Dense(Array2::zeros((2, 12))),
        array![0, 1],
        Features::Dense(Array2::zeros((1, 12))),
        array![2],
        3,
    )
    .unwrap();
    let mut network32 = MultiLayerPerceptron::<f32>::from_sizes(
        &[12, 4, 3],
        ActivationKind::Relu,
        Init::Uniform,
        1,
    )
    .unwrap();
    let error = train::train_network(&mut network32, &tiny, 1, 1e-300, 1, 0).unwrap_err();
    assert!(
        matches!(
            error,
            TrainError::InvalidSetting {
                setting: Setting::Lr,
                ..
            }
        ),
        "{error}"
    );
    let mut wrong = MultiLayerPerceptron::<f64>::from_sizes(
        &[11, 4, 3],
        ActivationKind::Relu,
        Init::Uniform,
        1,
    )
    .unwrap();
    let error = train::train_network(&mut wrong, &data, 1, 0.1, 1, 0).unwrap_err();
    assert!(
        matches!(
            error,
            TrainError::ModelDataMismatch {
                model_inputs: 11,
                features: 12,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn f64_epoch_on_the_subset_matches_plain_loop_reference() {
    // One epoch of the assignment's experiment (a) in f64: 784-256-10 sigmoid, lr 0.01,
    // batch 50, through the optimised path (BLAS, fused update) and through plain loops.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-subset");
    let data: Dataset<f64> = nabla::data::mnist_subset(&dir).unwrap();
    let mut network = MultiLayerPerceptron::from_sizes(
        &[784, 256, 10],
        ActivationKind::Sigmoid,
        Init::Uniform,
        10701,
    )
    .unwrap();
    let mut reference = nabla::reference::ReferenceMlp {
        weights: network
            .linear_layers()
            .map(|l| l.weights().to_owned())
            .collect(),
        biases: network
            .linear_layers()
            .map(|l| l.bias().to_owned())
            .collect(),
        activation: ActivationKind::Sigmoid,
    };
    train::train_network(&mut network, &data, 1, 0.01, 50, 10701).unwrap();
    let x = data.train_x.to_dense();
    for start in (0..x.nrows()).step_by(50) {
        let rows = ndarray::s![start..start + 50, ..];
        reference.train_batch(
            x.slice(rows),
            data.train_y.slice(ndarray::s![start..start + 50]),
            0.01,
        );
    }
    let layers = network
        .linear_layers()
        .zip(reference.weights.iter().zip(&reference.biases));
    for (linear, (weights, bias)) in layers {
        let difference = (&linear.weights() - weights)
            .mapv(f64::abs)
            .fold(0.0, |m: f64, &v| m.max(v));
        assert!(difference < 1e-9, "weights differ by {difference}");
        let difference = (&linear.bias() - bias)
            .mapv(f64::abs)
            .fold(0.0, |m: f64, &v| m.max(v));
        assert!(difference < 1e-9, "biases differ by {difference}");
    }
}
