//! `train_network` against a hand-computed example, and its extensions.

use nabla::data::{Dataset, Features};
use nabla::reference::{ReferenceMlp, ReferenceSgd};
use nabla::train::{self, EpochStats, Observer, Setting, TrainConfig, TrainError};
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

/// Records every batch's loss.
#[derive(Default)]
struct BatchLosses(Vec<(usize, f64)>);

impl Observer for BatchLosses {
    fn batch_finished(&mut self, epoch: usize, _batch: usize, loss: f64) {
        self.0.push((epoch, loss));
    }
}

/// Rows that the batch losses identify: row `i` is the one-hot vector `e_i` with label
/// `i % 4`, and a single linear layer puts the logit `a_i = 0.05 (i + 1)` on that label
/// and 0 elsewhere, so row `i`'s loss is `ln(3 + e^a_i) - a_i`, different for every
/// row. A row paired with another row's label has a loss above `ln 4`, above them all.
/// The learning rate (1e-300) leaves the weights unchanged, so every loss is exact.
struct IdentifiableRows {
    data: Dataset<f64>,
    losses: Vec<f64>,
}

impl IdentifiableRows {
    const ROWS: usize = 40;
    const CLASSES: usize = 4;

    fn new() -> Self {
        let x = Array2::<f64>::eye(Self::ROWS);
        let y: Array1<usize> = (0..Self::ROWS).map(|i| i % Self::CLASSES).collect();
        let losses = (0..Self::ROWS)
            .map(|i| {
                let a = Self::logit(i);
                (3.0 + a.exp()).ln() - a
            })
            .collect();
        let data = Dataset::new(
            Features::Dense(x.clone()),
            y.clone(),
            Features::Dense(x),
            y,
            Self::CLASSES,
        )
        .unwrap();
        Self { data, losses }
    }

    fn logit(row: usize) -> f64 {
        0.05 * (row + 1) as f64
    }

    fn model(&self) -> MultiLayerPerceptron<f64> {
        let mut weights = Array2::zeros((Self::CLASSES, Self::ROWS));
        for i in 0..Self::ROWS {
            weights[[i % Self::CLASSES, i]] = Self::logit(i);
        }
        let linear = Linear::from_params(weights, Array1::zeros(Self::CLASSES));
        MultiLayerPerceptron::new(vec![Layer::Linear(linear)]).unwrap()
    }

    /// Each epoch's rows in the order they were trained, from batches of one row.
    fn epoch_orders(&self, shuffle: bool, seed: u64, epochs: usize) -> Vec<Vec<usize>> {
        let mut config = TrainConfig::new(epochs, 1e-300, 1, seed);
        config.shuffle = shuffle;
        let mut seen = BatchLosses::default();
        train::train_with(&mut self.model(), &self.data, &config, &mut seen).unwrap();
        let mut orders = vec![Vec::new(); epochs];
        for (epoch, loss) in seen.0 {
            let (row, error) = self
                .losses
                .iter()
                .enumerate()
                .map(|(row, &expected)| (row, (loss - expected).abs()))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            assert!(
                loss < 4f64.ln(),
                "epoch {epoch}: a row trained with another row's label (loss {loss})"
            );
            assert!(error < 1e-12, "epoch {epoch}: loss {loss} is no row's");
            orders[epoch - 1].push(row);
        }
        orders
    }
}

#[test]
fn shuffling_visits_every_row_once_per_epoch_with_its_label() {
    let rows = IdentifiableRows::new();
    let in_order: Vec<usize> = (0..IdentifiableRows::ROWS).collect();
    for order in rows.epoch_orders(false, 1, 2) {
        assert_eq!(
            order, in_order,
            "without shuffling, batches follow the data"
        );
    }
    let orders = rows.epoch_orders(true, 1, 3);
    for (epoch, order) in orders.iter().enumerate() {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            in_order,
            "epoch {}: not every row exactly once",
            epoch + 1
        );
        assert_ne!(*order, in_order, "epoch {}: not shuffled", epoch + 1);
    }
    assert!(
        orders[0] != orders[1] && orders[1] != orders[2],
        "every epoch draws a new order"
    );
    assert_eq!(
        orders,
        rows.epoch_orders(true, 1, 3),
        "the seed reproduces the orders"
    );
    assert_ne!(
        orders,
        rows.epoch_orders(true, 2, 3),
        "another seed, other orders"
    );

    // Larger batches pair rows with their labels too: each epoch's losses, weighted by
    // batch size, sum to the sum of the rows' own losses (7 batches of 6, the last of 4).
    let mut config = TrainConfig::new(2, 1e-300, 6, 5);
    config.shuffle = true;
    let mut seen = BatchLosses::default();
    train::train_with(&mut rows.model(), &rows.data, &config, &mut seen).unwrap();
    let expected: f64 = rows.losses.iter().sum();
    for epoch in 1..=2 {
        let batches: Vec<f64> = seen
            .0
            .iter()
            .filter(|(e, _)| *e == epoch)
            .map(|(_, l)| *l)
            .collect();
        let total: f64 = batches
            .iter()
            .enumerate()
            .map(|(b, l)| l * if b < 6 { 6.0 } else { 4.0 })
            .sum();
        assert!(
            (total - expected).abs() < 1e-12,
            "epoch {epoch}: {total} vs {expected}"
        );
    }
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

/// Records the epochs reported as finished.
#[derive(Default)]
struct FinishedEpochs(Vec<EpochStats>);

impl Observer for FinishedEpochs {
    fn epoch_finished(&mut self, stats: &EpochStats) {
        self.0.push(*stats);
    }
}

/// A run that diverges only after some finished epochs: f32, sigmoid, an absurd learning
/// rate (1.2e35) and momentum 0.99, so that the output weights grow with the velocity until
/// the logits overflow, in epoch 9 on the subset's first 500 rows (found by a scan, the
/// same with the Cooperlake and Haswell kernels and 1 or 2 threads; 1.15e35 diverges in
/// epoch 17, 1.25e35 in epoch 1, 1e35 never).
pub fn late_divergence() -> (Dataset<f32>, MultiLayerPerceptron<f32>, TrainConfig) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-subset");
    let data = nabla::data::mnist_subset::<f32>(&dir)
        .unwrap()
        .head(500, 200);
    let model = MultiLayerPerceptron::<f32>::from_sizes(
        &[784, 32, 10],
        ActivationKind::Sigmoid,
        Init::Uniform,
        10701,
    )
    .unwrap();
    let mut config = TrainConfig::new(30, 1.2e35, 50, 10701);
    config.momentum = 0.99;
    (data, model, config)
}

#[test]
fn divergence_names_epoch_and_batch_and_keeps_the_finished_epochs() {
    let (data, mut model, config) = late_divergence();
    let mut finished = FinishedEpochs::default();
    let error = train::train_with(&mut model, &data, &config, &mut finished).unwrap_err();
    let TrainError::Diverged { epoch, batch, loss } = error else {
        panic!("expected divergence, got {error}");
    };
    assert!(
        epoch >= 2,
        "diverged in epoch {epoch}: the test needs finished epochs before it"
    );
    assert!((1..=10).contains(&batch) && !loss.is_finite());
    let numbers: Vec<usize> = finished.0.iter().map(|stats| stats.epoch).collect();
    assert_eq!(
        numbers,
        (1..epoch).collect::<Vec<_>>(),
        "every epoch before the divergence was reported"
    );
    assert!(finished
        .0
        .iter()
        .all(|stats| stats.train.loss.is_finite() && stats.test.loss.is_finite()));
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

#[test]
fn f32_and_f64_training_agree() {
    // One epoch of the assignment's experiment (a) on 1,000 subset rows from the same
    // initial weights (f32's are f64's rounded): f32 rounding (2^-24 ~ 6e-8 per
    // operation) accumulates over 20 steps to well under 1e-4 of the largest weight.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-subset");
    let data64 = nabla::data::mnist_subset::<f64>(&dir)
        .unwrap()
        .head(1000, 200);
    let data32 = nabla::data::mnist_subset::<f32>(&dir)
        .unwrap()
        .head(1000, 200);
    let sizes = [784, 256, 10];
    let mut model64 = MultiLayerPerceptron::<f64>::from_sizes(
        &sizes,
        ActivationKind::Sigmoid,
        Init::Uniform,
        10701,
    )
    .unwrap();
    let mut model32 = MultiLayerPerceptron::<f32>::from_sizes(
        &sizes,
        ActivationKind::Sigmoid,
        Init::Uniform,
        10701,
    )
    .unwrap();
    let history64 = train::train_network(&mut model64, &data64, 1, 0.01, 50, 10701).unwrap();
    let history32 = train::train_network(&mut model32, &data32, 1, 0.01, 50, 10701).unwrap();
    let (mut difference, mut scale) = (0.0f64, 0.0f64);
    for (a, b) in model64.linear_layers().zip(model32.linear_layers()) {
        for (&x, &y) in a
            .weights()
            .iter()
            .zip(b.weights().iter())
            .chain(a.bias().iter().zip(b.bias().iter()))
        {
            difference = difference.max((x - f64::from(y)).abs());
            scale = scale.max(x.abs());
        }
    }
    assert!(
        difference / scale < 1e-4,
        "weights differ by {:e} relative",
        difference / scale
    );
    assert!(difference > 0.0, "f32 really computed in f32");
    let (e64, e32) = (&history64.epochs[0], &history32.epochs[0]);
    assert!(
        (e64.train.loss - e32.train.loss).abs() < 1e-4
            && (e64.test.loss - e32.test.loss).abs() < 1e-4
    );
    assert!((e64.test.accuracy - e32.test.accuracy).abs() <= 1.0 / 200.0);
}

#[test]
fn chunked_evaluation_equals_one_pass() {
    // 2,501 rows: chunks of 1,000, 1,000 and 501, each chunk's mean loss weighted by its
    // rows, against one forward pass over all rows.
    let data = small_mnist_like(2501, 9);
    let mut network = model(4);
    let x = data.train_x.to_dense();
    let (evaluation, predictions) = train::evaluate(&network, &data.train_x, data.train_y.view());
    let logits = network.forward(x.view()).to_owned();
    let mut loss = SoftmaxCrossEntropy::new();
    let expected_loss = loss.forward(logits.view(), data.train_y.view());
    assert!(
        (evaluation.loss - expected_loss).abs() < 1e-12,
        "{} vs {expected_loss}",
        evaluation.loss
    );
    let expected: Vec<usize> = logits
        .rows()
        .into_iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect();
    assert_eq!(predictions.to_vec(), expected);
    let correct = expected
        .iter()
        .zip(&data.train_y)
        .filter(|(p, l)| p == l)
        .count();
    assert_eq!(evaluation.accuracy, correct as f64 / 2501.0);
    assert_eq!(train::predict(&network, &data.train_x).to_vec(), expected);
}
