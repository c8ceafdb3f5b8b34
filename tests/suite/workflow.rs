//! The training workflow: Adam/AdamW, schedules, the validation split, early stopping,
//! exact resume, and the classification report.

use std::path::Path;

use nabla::checkpoint;
use nabla::data::{stratified_split, Dataset, Features};
use nabla::layers::{ActivationKind as Kind, Linear};
use nabla::optim::schedule::{ScheduleConfig, ScheduleKind, Scheduler};
use nabla::optim::{Adam, OptimizerKind, Sgd};
use nabla::reference::{ReferenceAdam, ReferenceMlp};
use nabla::train::{self, ClassificationReport, EpochStats, Observer, Stop, TrainConfig, Trainer};
use nabla::{Init, Layer, Module, MultiLayerPerceptron, SoftmaxCrossEntropy};
use ndarray::{array, s, Array1, Array2};

use super::util::random_matrix;

/// 67 rows of 12 features whose label (3 classes) is a function of the features.
fn small_data(rows: usize, seed: u64) -> Dataset<f64> {
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

fn small_model(seed: u64) -> MultiLayerPerceptron<f64> {
    MultiLayerPerceptron::from_sizes(&[12, 16, 3], Kind::Relu, Init::Uniform, seed).unwrap()
}

fn relative_difference(network: &MultiLayerPerceptron<f64>, reference: &ReferenceMlp<f64>) -> f64 {
    let (mut difference, mut scale) = (0.0f64, 0.0f64);
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

#[test]
fn adam_and_adamw_match_the_plain_loop_formulas() {
    // 3 epochs of batches of 10 (the last of 7), f64, against the published formulas in
    // plain loops (nabla::reference::ReferenceAdam), with and without weight decay.
    let data = small_data(67, 6);
    let x = data.train_x.to_dense();
    for (optimizer, weight_decay) in [
        (OptimizerKind::Adam, 0.0),
        (OptimizerKind::Adam, 0.05),
        (OptimizerKind::AdamW, 0.05),
    ] {
        let setting = format!("{optimizer} weight decay {weight_decay}");
        let mut network = small_model(7);
        let mut reference = ReferenceMlp {
            weights: network
                .linear_layers()
                .map(|l| l.weights().to_owned())
                .collect(),
            biases: network
                .linear_layers()
                .map(|l| l.bias().to_owned())
                .collect(),
            activation: Kind::Relu,
        };
        let mut config = TrainConfig::new(3, 0.01, 10, 0);
        config.optimizer = optimizer;
        config.weight_decay = weight_decay;
        train::train_with(&mut network, &data, &config, &mut ()).unwrap();
        let mut reference_adam = ReferenceAdam {
            weight_decay,
            decoupled: optimizer == OptimizerKind::AdamW,
            ..ReferenceAdam::new(0.01)
        };
        for _epoch in 0..3 {
            for start in (0..67).step_by(10) {
                let end = (start + 10).min(67);
                let (_, gradients) = reference.gradients(
                    x.slice(s![start..end, ..]),
                    data.train_y.slice(s![start..end]),
                );
                reference_adam.step(&mut reference, &gradients);
            }
        }
        let difference = relative_difference(&network, &reference);
        assert!(
            difference < 1e-12,
            "{setting}: differs from the formulas by {difference:e}"
        );
        let mut plain = small_model(7);
        train::train_network(&mut plain, &data, 3, 0.01, 10, 0).unwrap();
        assert!(
            relative_difference(&plain, &reference) > 1e-3,
            "{setting}: no different from SGD"
        );
    }
}

/// The 4-3-2 ReLU network and batch of the PyTorch script below.
fn pytorch_problem() -> (MultiLayerPerceptron<f64>, Array2<f64>, Array1<usize>) {
    let network = MultiLayerPerceptron::new(vec![
        Linear::from_params(
            array![
                [0.1, -0.2, 0.3, 0.05],
                [-0.4, 0.25, 0.1, -0.3],
                [0.2, 0.2, -0.1, 0.15]
            ],
            array![0.01, -0.02, 0.03],
        )
        .into(),
        Layer::activation(Kind::Relu),
        Linear::from_params(
            array![[0.3, -0.1, 0.2], [-0.25, 0.4, 0.1]],
            array![0.05, -0.05],
        )
        .into(),
    ])
    .unwrap();
    let x = array![
        [1.0, 0.5, -0.5, 2.0],
        [0.0, -1.0, 1.5, 0.5],
        [0.3, 0.3, 0.3, -0.3]
    ];
    (network, x, array![1, 0, 1])
}

/// Parameters of the network after 5 steps, in PyTorch 2.15's `state_dict` order,
/// produced (f64) by:
///
/// ```python
/// torch.set_default_dtype(torch.float64)
/// net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))  # weights as in pytorch_problem
/// # lam = 0.05; nabla decays weight matrices only, so the biases are a group without decay:
/// adam  = Adam([{"params": weights, "weight_decay": 2 * lam}, {"params": biases, "weight_decay": 0}], lr=0.1)
/// adamw = AdamW([{"params": weights, "weight_decay": lam}, {"params": biases, "weight_decay": 0}], lr=0.1)
/// sgd   = SGD([{"params": weights, "weight_decay": 2 * lam}, {"params": biases, "weight_decay": 0}],
///           lr=0.1, momentum=0.9, nesterov=True)
/// for _ in range(5):
///     opt.zero_grad(); F.cross_entropy(net(x), y).backward(); opt.step()
/// ```
const PYTORCH_ADAM: [&[f64]; 4] = [
    &[
        -0.22017853253035458,
        -0.6799659327826113,
        0.7822365032034867,
        0.2630536377483003,
        0.0721487741098421,
        0.3366379086562657,
        0.0348861199170445,
        -0.1445403864227528,
        0.1349278457224047,
        0.048975468006618776,
        -0.150600160196927,
        0.2096128968208763,
    ],
    &[
        0.11369772322411652,
        0.40440126632628454,
        0.04587196369077137,
    ],
    &[
        0.7887495558788393,
        -0.31843793252621877,
        -0.16097091329142454,
        -0.7404043313678406,
        0.19457499112593873,
        0.36262324315417577,
    ],
    &[-0.4422330233607277, 0.4422330233607277],
];
const PYTORCH_ADAMW: [&[f64]; 4] = [
    &[
        -0.2386066770925445,
        -0.6847933558564794,
        0.7798585487214948,
        0.30117817322726953,
        0.10102339140681815,
        0.7098107857985875,
        0.3803833784558398,
        -0.7760374474505907,
        0.270962353887817,
        0.2450156634264798,
        -0.2760711762622434,
        0.2682780689632689,
    ],
    &[0.11933889899166354, 0.4477784740724125, 0.04791352477005889],
    &[
        0.7863442180075751,
        -0.564876815233875,
        -0.20420876821809847,
        -0.7375817803514815,
        0.8574514411704374,
        0.496783394154661,
    ],
    &[-0.43112919581985126, 0.4311291958198513],
];
const PYTORCH_SGD_NESTEROV: [&[f64]; 4] = [
    &[
        0.0435046387495666,
        -0.33923467675598784,
        0.4080034211777731,
        0.14786501900321064,
        -0.29779280994534496,
        0.24719368621298074,
        0.12142757171490559,
        -0.28911572437900573,
        0.16612888579044124,
        0.16675907730501036,
        -0.08351276866200182,
        0.12354423228431964,
    ],
    &[
        0.005353763316963753,
        0.11089416419399116,
        0.02641668892812195,
    ],
    &[
        0.4088527996951449,
        -0.10807709770541502,
        -0.012192786627259986,
        -0.36693076152911985,
        0.35960932670156537,
        0.2637250156234103,
    ],
    &[-0.26048344245544036, 0.2604834424554403],
];

#[test]
fn optimizers_match_pytorch_on_a_small_problem() {
    let lambda = 0.05;
    let mut adam = Adam::new(0.1).with_weight_decay(lambda);
    let mut adamw = Adam::adamw(0.1).with_weight_decay(lambda);
    let mut sgd = Sgd::new(0.1)
        .with_momentum(0.9)
        .with_nesterov(true)
        .with_weight_decay(lambda);
    type Step<'a> = &'a mut dyn FnMut(&mut MultiLayerPerceptron<f64>);
    let mut step: [(&str, Step<'_>, [&[f64]; 4]); 3] = [
        ("adam", &mut |m| adam.step(m), PYTORCH_ADAM),
        ("adamw", &mut |m| adamw.step(m), PYTORCH_ADAMW),
        ("sgd nesterov", &mut |m| sgd.step(m), PYTORCH_SGD_NESTEROV),
    ];
    for (name, apply, expected) in &mut step {
        let (mut network, x, y) = pytorch_problem();
        let mut loss = SoftmaxCrossEntropy::new();
        for _ in 0..5 {
            loss.forward(network.forward(x.view()), y.view());
            network.backward(loss.backward());
            apply(&mut network);
        }
        let found: Vec<Vec<f64>> = network
            .linear_layers()
            .flat_map(|l| [l.weights().iter().copied().collect(), l.bias().to_vec()])
            .collect();
        for (tensor, (found, expected)) in found.iter().zip(expected.iter()).enumerate() {
            for (index, (&a, &b)) in found.iter().zip(expected.iter()).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1e-3),
                    "{name}: tensor {tensor}[{index}] {a} vs PyTorch {b}"
                );
            }
        }
    }
}

/// After one epoch of the assignment's subset (3,000 rows, in-order batches of 50) with
/// 784-256-10 ReLU in f64 from nabla's seed-10701 weights: each tensor's sum, sum of
/// squares and five entries (indices 0, 1, 7, len/2, len-1), from PyTorch 2.15:
///
/// ```python
/// net.load_state_dict(load_file("init.safetensors"))   # nabla's initial weights, f64
/// Adam([{"params": weights}, {"params": biases}], lr=0.001)
/// AdamW([{"params": weights, "weight_decay": 0.01}, {"params": biases, "weight_decay": 0}], lr=0.001)
/// for start in range(0, 3000, 50):
///     opt.zero_grad(); F.cross_entropy(net(x[start:start+50]), y[start:start+50]).backward(); opt.step()
/// ```
///
/// (All 203,530 weights agreed to 2.2e-14 relative when this was checked whole.)
const PYTORCH_SUBSET_EPOCH: [(&str, &str, f64, f64, [f64; 5]); 8] = [
    (
        "adam",
        "0.weight",
        524.3233890879457,
        131.1687171454853,
        [
            0.003706575699716441,
            0.004766892281587935,
            0.010451662272514164,
            0.008172234153443293,
            -0.03153538777962819,
        ],
    ),
    (
        "adam",
        "0.bias",
        3.311833503968515,
        0.0761731501253125,
        [
            0.02102686411995104,
            0.005054732297931536,
            0.006643556709579614,
            0.01576439011025159,
            0.02360937553425503,
        ],
    ),
    (
        "adam",
        "2.weight",
        -16.32759078757318,
        7.126264724293618,
        [
            0.006598776684483679,
            0.0336342463686094,
            0.02247886157525355,
            0.019245023893716264,
            0.09710051046090815,
        ],
    ),
    (
        "adam",
        "2.bias",
        -0.003503342924677546,
        0.0018866742002572271,
        [
            -0.020377862347369977,
            0.025418123551011283,
            0.0155430380397835,
            0.003274437853720135,
            0.005740393505364392,
        ],
    ),
    (
        "adamw",
        "0.weight",
        524.0932635505875,
        131.0449654917096,
        [
            0.0037043524102336996,
            0.004764032989795832,
            0.010445393124737298,
            0.008167332259157086,
            -0.03151647212764514,
        ],
    ),
    (
        "adamw",
        "0.bias",
        3.3120345642481546,
        0.07619258580550733,
        [
            0.02103418960039966,
            0.005056851479783899,
            0.006660056295734248,
            0.016058000356221035,
            0.023615424251191834,
        ],
    ),
    (
        "adamw",
        "2.weight",
        -16.320877249950676,
        7.120049609887737,
        [
            0.006607890780222641,
            0.03363057429134138,
            0.02247271312558029,
            0.019246759410425796,
            0.09706084877314379,
        ],
    ),
    (
        "adamw",
        "2.bias",
        -0.0035083429878674816,
        0.0018863508059600708,
        [
            -0.02037568607347639,
            0.025409749382457953,
            0.015540332759792247,
            0.0032808708651380462,
            0.005747794837208173,
        ],
    ),
];

#[test]
fn one_subset_epoch_of_adam_and_adamw_matches_pytorch() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-subset");
    let data = nabla::data::mnist_subset::<f64>(&dir).unwrap();
    for (optimizer, weight_decay, name) in [
        (OptimizerKind::Adam, 0.0, "adam"),
        (OptimizerKind::AdamW, 0.01, "adamw"),
    ] {
        let mut network = MultiLayerPerceptron::<f64>::from_sizes(
            &[784, 256, 10],
            Kind::Relu,
            Init::Uniform,
            10701,
        )
        .unwrap();
        let mut config = TrainConfig::new(1, 0.001, 50, 10701);
        config.optimizer = optimizer;
        config.weight_decay = weight_decay;
        train::train_with(&mut network, &data, &config, &mut ()).unwrap();
        let tensors: Vec<(String, Vec<f64>)> = network
            .linear_layers()
            .zip([0, 2])
            .flat_map(|(l, p)| {
                [
                    (format!("{p}.weight"), l.weights().iter().copied().collect()),
                    (format!("{p}.bias"), l.bias().to_vec()),
                ]
            })
            .collect();
        for (case, key, sum, squares, entries) in
            PYTORCH_SUBSET_EPOCH.iter().filter(|row| row.0 == name)
        {
            let values = &tensors.iter().find(|(k, _)| k == key).unwrap().1;
            let close = |a: f64, b: f64, what: &str| {
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1e-6),
                    "{case} {key} {what}: {a} vs PyTorch {b}"
                );
            };
            close(values.iter().sum(), *sum, "sum");
            close(
                values.iter().map(|v| v * v).sum(),
                *squares,
                "sum of squares",
            );
            let n = values.len();
            for (index, expected) in [0, 1, 7, n / 2, n - 1].into_iter().zip(entries) {
                close(values[index], *expected, &format!("[{index}]"));
            }
        }
    }
}

/// Learning rates per epoch (base 0.1, 12 epochs) from PyTorch 2.15's schedulers:
/// `StepLR(step_size=3, gamma=0.5)`, `CosineAnnealingLR(T_max=12, eta_min=0.001)`,
/// `ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.01)` stepped with `LOSSES`, and
/// `SequentialLR([LinearLR(start_factor=1/4, total_iters=3), CosineAnnealingLR(T_max=9)],
/// milestones=[3])`.
const PYTORCH_STEP: [f64; 12] = [
    0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125, 0.0125,
];
const PYTORCH_COSINE: [f64; 12] = [
    0.1,
    0.09831332840130888,
    0.09336825748732973,
    0.0855017856687341,
    0.07525000000000001,
    0.06331154273257479,
    0.05050000000000001,
    0.037688457267425236,
    0.025750000000000016,
    0.015498214331265903,
    0.007631742512670285,
    0.0026866715986911243,
];
const LOSSES: [f64; 12] = [
    1.0, 0.9, 0.95, 0.9, 0.91, 0.8, 0.8, 0.8, 0.79999, 0.7, 0.71, 0.72,
];
const PYTORCH_PLATEAU: [f64; 12] = [
    0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025,
];
const PYTORCH_WARMUP_COSINE: [f64; 12] = [
    0.025,
    0.05,
    0.07500000000000001,
    0.1,
    0.09698463103929543,
    0.08830222215594889,
    0.075,
    0.058682408883346526,
    0.041317591116653486,
    0.025000000000000012,
    0.011697777844051105,
    0.0030153689607045845,
];

#[test]
fn schedules_follow_pytorch() {
    let config = |kind, lr_min, warmup_epochs| ScheduleConfig {
        kind,
        step_size: 3,
        gamma: 0.5,
        lr_min,
        patience: 1,
        factor: 0.5,
        warmup_epochs,
    };
    for (name, schedule, expected) in [
        ("step", config(ScheduleKind::Step, 0.0, 0), PYTORCH_STEP),
        (
            "cosine",
            config(ScheduleKind::Cosine, 0.001, 0),
            PYTORCH_COSINE,
        ),
        (
            "plateau",
            config(ScheduleKind::Plateau, 0.01, 0),
            PYTORCH_PLATEAU,
        ),
        (
            "warm-up + cosine",
            config(ScheduleKind::Cosine, 0.0, 3),
            PYTORCH_WARMUP_COSINE,
        ),
    ] {
        let mut scheduler = Scheduler::new(schedule, 0.1, 12);
        for (epoch, &want) in expected.iter().enumerate() {
            let lr = scheduler.lr();
            assert!(
                (lr - want).abs() <= 1e-15,
                "{name}, epoch {epoch}: {lr} vs PyTorch {want}"
            );
            scheduler.step(LOSSES[epoch]);
        }
    }
}

#[test]
fn the_validation_split_is_stratified_and_seeded() {
    let labels: Vec<usize> = (0..1000)
        .map(|i| {
            if i % 10 < 7 {
                0
            } else if i % 10 < 9 {
                1
            } else {
                2
            }
        })
        .collect();
    let (kept, held) = stratified_split(&labels, 3, 0.1, 7);
    assert_eq!(held.len(), 100);
    let count = |rows: &[usize], class: usize| rows.iter().filter(|&&r| labels[r] == class).count();
    assert_eq!(
        [count(&held, 0), count(&held, 1), count(&held, 2)],
        [70, 20, 10],
        "each class in proportion"
    );
    let mut all: Vec<usize> = kept.iter().chain(&held).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..1000).collect::<Vec<_>>(),
        "disjoint, and every row in one of them"
    );
    assert!(
        kept.windows(2).all(|w| w[0] < w[1]),
        "the kept rows keep their order"
    );
    assert_eq!(
        stratified_split(&labels, 3, 0.1, 7),
        (kept.clone(), held.clone())
    );
    assert_ne!(
        stratified_split(&labels, 3, 0.1, 8).1,
        held,
        "another seed holds out other rows"
    );
    // Through a data set: features travel with their labels.
    let x = Array2::from_shape_fn((1000, 2), |(i, j)| (i * 2 + j) as f64);
    let data = Dataset::new(
        Features::Dense(x.clone()),
        labels.clone().into(),
        Features::Dense(x),
        labels.clone().into(),
        3,
    )
    .unwrap()
    .split_validation(0.1, 7)
    .unwrap();
    let validation = data.validation.as_ref().unwrap();
    assert_eq!(validation.y.len(), 100);
    let rows = validation.x.to_dense();
    for (row, &label) in rows.rows().into_iter().zip(&validation.y) {
        let original = (row[0] / 2.0) as usize;
        assert_eq!(labels[original], label);
    }
    assert_eq!(data.train_y.len(), 900);
    assert!(Dataset::new(
        Features::Dense(Array2::<f64>::zeros((2, 1))),
        array![0, 1],
        Features::Dense(Array2::zeros((1, 1))),
        array![0],
        2
    )
    .unwrap()
    .split_validation(1.5, 1)
    .is_err());
}

/// Records the epochs reported.
#[derive(Default)]
struct Epochs(Vec<EpochStats>);

impl Observer for Epochs {
    fn epoch_finished(&mut self, stats: &EpochStats) {
        self.0.push(*stats);
    }
}

#[test]
fn early_stopping_stops_and_keeps_the_best_epoch() {
    // A large learning rate on 300 rows overfits: the validation loss turns up, and the
    // run stops `patience` epochs after its lowest point, with that epoch's weights.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-subset");
    let data = nabla::data::mnist_subset::<f64>(&dir)
        .unwrap()
        .head(400, 100)
        .split_validation(0.25, 1)
        .unwrap();
    let mut network =
        MultiLayerPerceptron::<f64>::from_sizes(&[784, 64, 10], Kind::Relu, Init::Uniform, 3)
            .unwrap();
    let mut config = TrainConfig::new(200, 0.2, 20, 1);
    config.patience = Some(3);
    let mut seen = Epochs::default();
    let history = train::train_with(&mut network, &data, &config, &mut seen).unwrap();
    let best = history.best_epoch.unwrap();
    let last = history.epochs.last().unwrap().epoch;
    assert!(
        matches!(history.stop, Stop::EarlyStopped { epoch } if epoch == last),
        "{:?}",
        history.stop
    );
    assert!(
        last < 200 && last == best + 3,
        "stopped at {last}, best {best}"
    );
    assert!(history.restored_best);
    let lowest = seen
        .0
        .iter()
        .map(|s| s.val.unwrap().loss)
        .fold(f64::INFINITY, f64::min);
    let best_stats = seen.0[best - 1];
    assert_eq!(best_stats.val.unwrap().loss, lowest);
    assert_eq!(
        seen.0.last().and_then(|s| s.epochs_without_improvement),
        Some(3)
    );
    // The model holds the best epoch's weights: evaluating it gives that epoch's numbers.
    let validation = data.validation.as_ref().unwrap();
    let (evaluation, _) = train::evaluate(&network, &validation.x, validation.y.view());
    assert_eq!(evaluation, best_stats.val.unwrap());
    // With restore_best off, the model keeps the last epoch's weights.
    let mut last_network =
        MultiLayerPerceptron::<f64>::from_sizes(&[784, 64, 10], Kind::Relu, Init::Uniform, 3)
            .unwrap();
    config.restore_best = false;
    let history = train::train_with(&mut last_network, &data, &config, &mut ()).unwrap();
    assert!(!history.restored_best);
    let (evaluation, _) = train::evaluate(&last_network, &validation.x, validation.y.view());
    assert_eq!(evaluation, history.epochs.last().unwrap().val.unwrap());
}

/// Stops after `after` batches of epoch `epoch`.
struct StopAt {
    epoch: usize,
    after: usize,
    current: (usize, usize),
}

impl Observer for StopAt {
    fn batch_finished(&mut self, epoch: usize, batch: usize, _loss: f64) {
        self.current = (epoch, batch);
    }

    fn should_stop(&mut self) -> bool {
        self.current == (self.epoch, self.after)
            || (self.after == 0 && self.current.0 == self.epoch - 1)
    }
}

/// Rows of the history with the times left out.
fn without_times(epochs: &[EpochStats]) -> Vec<EpochStats> {
    epochs
        .iter()
        .map(|stats| EpochStats {
            train_seconds: 0.0,
            eval_seconds: 0.0,
            ..*stats
        })
        .collect()
}

fn weights_of(model: &MultiLayerPerceptron<f64>) -> Vec<u64> {
    model
        .linear_layers()
        .flat_map(|l| {
            l.weights()
                .iter()
                .chain(l.bias().iter())
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_stopped_and_resumed_run_equals_an_uninterrupted_one() {
    // For each setting: 6 epochs straight, against a run stopped (after epoch 3, and
    // part-way through epoch 4), saved to a checkpoint file, loaded and resumed. Weights
    // bit for bit, and every epoch's numbers, must agree.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-subset");
    let data = nabla::data::mnist_subset::<f64>(&dir)
        .unwrap()
        .head(600, 100)
        .split_validation(0.2, 3)
        .unwrap();
    let base = TrainConfig::new(6, 0.05, 50, 9);
    let sgd = TrainConfig {
        momentum: 0.9,
        shuffle: true,
        ..base.clone()
    };
    let mut adam = TrainConfig {
        optimizer: OptimizerKind::Adam,
        lr: 0.002,
        ..base.clone()
    };
    adam.schedule.kind = ScheduleKind::Cosine;
    let mut adamw = TrainConfig {
        optimizer: OptimizerKind::AdamW,
        lr: 0.002,
        weight_decay: 0.01,
        patience: Some(2),
        shuffle: true,
        ..base.clone()
    };
    adamw.schedule.kind = ScheduleKind::Plateau;
    adamw.schedule.patience = 0;
    adamw.schedule.factor = 0.5;
    let scratch = tempfile::tempdir().unwrap();
    for (name, config) in [
        ("sgd+momentum+shuffle", sgd),
        ("adam+cosine", adam),
        ("adamw+plateau+early stopping", adamw),
    ] {
        let model = || {
            MultiLayerPerceptron::<f64>::from_sizes(&[784, 32, 10], Kind::Sigmoid, Init::Uniform, 5)
                .unwrap()
        };
        let mut straight = model();
        let expected = train::train_with(&mut straight, &data, &config, &mut ()).unwrap();
        for (epoch, after) in [(4, 0), (4, 5)] {
            let path = scratch.path().join("run.safetensors");
            let mut first = model();
            {
                let mut trainer = Trainer::new(&mut first, &data, &config).unwrap();
                let mut stop = StopAt {
                    epoch,
                    after,
                    current: (0, 0),
                };
                while trainer.run_epoch(&mut stop).unwrap() {}
                assert!(
                    matches!(trainer.stop(), Some(Stop::Interrupted { .. })),
                    "{name}: {:?}",
                    trainer.stop()
                );
                checkpoint::save_training(
                    &path,
                    trainer.model(),
                    &trainer.state(),
                    &serde_json::Value::Null,
                )
                .unwrap();
            }
            let (mut resumed, state, _) = checkpoint::load_training::<f64>(&path).unwrap();
            let mut trainer = Trainer::resume(&mut resumed, &data, &config, state).unwrap();
            while trainer.run_epoch(&mut ()).unwrap() {}
            let history = trainer.finish();
            let setting = format!("{name}, stopped in epoch {epoch} after batch {after}");
            assert_eq!(
                weights_of(&resumed),
                weights_of(&straight),
                "{setting}: weights differ"
            );
            assert_eq!(
                without_times(&history.epochs),
                without_times(&expected.epochs),
                "{setting}: epochs differ"
            );
            assert_eq!(history.stop, expected.stop, "{setting}");
        }
    }
}

#[test]
fn a_resume_with_another_optimizer_or_data_is_refused() {
    let data = small_data(67, 1);
    let other = small_data(40, 2);
    let config = TrainConfig {
        shuffle: true,
        momentum: 0.5,
        ..TrainConfig::new(4, 0.1, 10, 0)
    };
    let mut model = small_model(1);
    let mut trainer = Trainer::new(&mut model, &data, &config).unwrap();
    trainer.run_epoch(&mut ()).unwrap();
    let state = trainer.state();
    drop(trainer);
    let adam = TrainConfig {
        optimizer: OptimizerKind::Adam,
        ..config.clone()
    };
    let error = Trainer::resume(&mut small_model(1), &data, &adam, state.clone())
        .err()
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("optimizer is sgd, this run's is adam"),
        "{error}"
    );
    let error = Trainer::resume(&mut small_model(1), &other, &config, state.clone())
        .err()
        .unwrap();
    assert!(error.to_string().contains("shuffled order"), "{error}");
    let unshuffled = TrainConfig {
        shuffle: false,
        ..config.clone()
    };
    let error = Trainer::resume(&mut small_model(1), &data, &unshuffled, state.clone())
        .err()
        .unwrap();
    assert!(error.to_string().contains("shuffling"), "{error}");
    let wider =
        MultiLayerPerceptron::from_sizes(&[12, 17, 3], Kind::Relu, Init::Uniform, 1).unwrap();
    let error = Trainer::resume(&mut wider.clone(), &data, &config, state.clone())
        .err()
        .unwrap();
    assert!(error.to_string().contains("optimizer state"), "{error}");
    // More epochs are fine.
    let longer = TrainConfig {
        epochs: 8,
        ..config.clone()
    };
    assert!(Trainer::resume(&mut small_model(1), &data, &longer, state).is_ok());
}

#[test]
fn a_state_missing_an_optimizer_buffer_is_refused_not_a_panic() {
    let data = small_data(67, 1);
    for (optimizer, missing) in [
        (OptimizerKind::Adam, "exp_avg_sq"),
        (OptimizerKind::AdamW, "exp_avg"),
        (OptimizerKind::Sgd, "momentum"),
    ] {
        let config = TrainConfig {
            optimizer,
            momentum: 0.9,
            ..TrainConfig::new(4, 0.01, 10, 0)
        };
        let mut model = small_model(1);
        let mut trainer = Trainer::new(&mut model, &data, &config).unwrap();
        trainer.run_epoch(&mut ()).unwrap();
        let mut state = trainer.state();
        drop(trainer);
        let key = state
            .optimizer
            .buffers
            .keys()
            .find(|(name, _)| name == missing)
            .cloned()
            .unwrap();
        state.optimizer.buffers.remove(&key);
        let error = Trainer::resume(&mut model, &data, &config, state)
            .err()
            .unwrap();
        assert!(
            error
                .to_string()
                .contains(&format!("no '{missing}' buffer for 0.weight")),
            "{error}"
        );
    }
}

#[test]
fn a_resumed_run_that_had_ended_trains_nothing_more() {
    let data = small_data(67, 1);
    let config = TrainConfig::new(2, 0.1, 10, 0);
    let mut model = small_model(1);
    let mut trainer = Trainer::new(&mut model, &data, &config).unwrap();
    while trainer.run_epoch(&mut ()).unwrap() {}
    let state = trainer.state();
    drop(trainer);
    let weights = weights_of(&model);
    let mut trainer = Trainer::resume(&mut model, &data, &config, state.clone()).unwrap();
    assert_eq!(trainer.stop(), Some(nabla::train::Stop::Completed));
    assert!(!trainer.run_epoch(&mut ()).unwrap());
    assert_eq!(trainer.epochs_done(), 2);
    drop(trainer);
    assert_eq!(weights_of(&model), weights);
    let longer = TrainConfig {
        epochs: 3,
        ..config
    };
    let mut trainer = Trainer::resume(&mut model, &data, &longer, state).unwrap();
    assert_eq!(trainer.stop(), None);
    assert!(!trainer.run_epoch(&mut ()).unwrap());
    assert_eq!(trainer.epochs_done(), 3);
}

#[test]
fn the_classification_report_counts_by_hand() {
    // labels 0 0 0 1 1 2, predictions 0 1 0 1 2 2:
    // class 0: tp 2, predicted 2, support 3 -> precision 1, recall 2/3, f1 0.8
    // class 1: tp 1, predicted 2, support 2 -> precision 1/2, recall 1/2, f1 1/2
    // class 2: tp 1, predicted 2, support 1 -> precision 1/2, recall 1, f1 2/3
    let report = ClassificationReport::new(
        array![0, 0, 0, 1, 1, 2].view(),
        array![0, 1, 0, 1, 2, 2].view(),
        3,
    );
    assert_eq!(
        report.confusion,
        vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
    );
    let expected = [
        (1.0, 2.0 / 3.0, 0.8, 3),
        (0.5, 0.5, 0.5, 2),
        (0.5, 1.0, 2.0 / 3.0, 1),
    ];
    for (metrics, (precision, recall, f1, support)) in report.classes.iter().zip(expected) {
        assert!(
            (metrics.precision - precision).abs() < 1e-15
                && (metrics.recall - recall).abs() < 1e-15
        );
        assert!((metrics.f1 - f1).abs() < 1e-15 && metrics.support == support);
    }
    assert!((report.macro_average.f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-15);
    assert!((report.accuracy - 4.0 / 6.0).abs() < 1e-15);
    // A class never predicted and never present: zeros, not NaN.
    let empty = ClassificationReport::new(array![0, 0].view(), array![0, 0].view(), 2);
    assert_eq!(
        (
            empty.classes[1].precision,
            empty.classes[1].recall,
            empty.classes[1].f1
        ),
        (0.0, 0.0, 0.0)
    );
}

// The command line's workflow: run folders, resume, eval --json, the heat map.

use super::cli::{assert_refused, column, nabla, nabla_subcommand, stdout_of};

/// `nabla train` on 600 subset rows with a validation split, into `out`.
fn folder_run(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut command = nabla();
    command
        .args([
            "--train-rows",
            "600",
            "--test-rows",
            "100",
            "--val-split",
            "0.2",
            "--hidden",
            "32",
        ])
        .args([
            "--activation",
            "relu",
            "--optimizer",
            "adam",
            "--lr",
            "0.003",
            "--quiet",
        ])
        .arg("--out")
        .arg(out)
        .args(extra);
    command.output().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_run_folder_holds_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = folder_run(
        &out,
        &[
            "--epochs",
            "4",
            "--lr-schedule",
            "cosine",
            "--patience",
            "10",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "config.json",
        "log.csv",
        "summary.json",
        "model.safetensors",
        "checkpoint.safetensors",
    ] {
        assert!(out.join(file).is_file(), "{file} is missing");
    }
    let config = json(&out.join("config.json"));
    assert_eq!(config["config"]["train"]["optimizer"], "adam");
    assert_eq!(config["config"]["data"]["val_split"], 0.2);
    assert_eq!(config["threads"], 2);
    assert_eq!(
        config["data_sha256"].as_object().unwrap().len(),
        2,
        "{config}"
    );
    let log = out.join("log.csv");
    assert_eq!(column(&log, "epoch"), ["1", "2", "3", "4"]);
    assert!(column(&log, "val_loss")
        .iter()
        .all(|v| v.parse::<f64>().is_ok()));
    let lrs: Vec<f64> = column(&log, "lr")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        lrs[0] == 0.003 && lrs.windows(2).all(|w| w[1] < w[0]),
        "cosine: {lrs:?}"
    );
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["stopped"], "completed");
    assert_eq!(summary["epochs"], 4);
    assert_eq!(summary["monitored"], "val_loss");
    let best = summary["best_epoch"].as_u64().unwrap() as usize;
    let val: Vec<f64> = column(&log, "val_loss")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    let lowest = val.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(
        val[best - 1],
        lowest,
        "the best epoch has the lowest validation loss"
    );
    assert_eq!(summary["restored_best"], true);
    assert!(
        summary["seconds"]["total"].as_f64().unwrap() > 0.0
            && summary["peak_memory_mb"].as_f64().unwrap() > 1.0
    );
    // The folder is a run: another run may not take it.
    let output = folder_run(&out, &["--epochs", "1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("holds a run already"));
    // summarize and plot take run folders.
    let table = stdout_of(nabla_subcommand("summarize").arg(&out));
    assert!(
        table.contains("| run | 32 | relu | 0.003 |") && table.contains(&format!("| {best} |")),
        "{table}"
    );
    let svg = dir.path().join("curves.svg");
    stdout_of(nabla_subcommand("plot").arg(&out).arg("-o").arg(&svg));
    assert!(std::fs::read_to_string(&svg)
        .unwrap()
        .contains("\nrun\n</text>"));
}

#[test]
fn resume_continues_exactly_and_refuses_other_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, stopped) = (dir.path().join("straight"), dir.path().join("stopped"));
    let shuffled = [
        "--shuffle",
        "--lr-schedule",
        "plateau",
        "--lr-patience",
        "0",
        "--lr-factor",
        "0.5",
    ];
    let args = |epochs: &'static str| {
        let mut all = shuffled.to_vec();
        all.extend(["--epochs", epochs]);
        all
    };
    assert!(folder_run(&straight, &args("5")).status.success());
    // The same run, but only 2 epochs, then resumed for 3 more.
    assert!(folder_run(&stopped, &args("2")).status.success());
    let refusals = [
        (
            vec!["--lr", "0.5"],
            "--lr is 0.003 in the saved run, 0.5 now",
        ),
        (
            vec!["--hidden", "64"],
            "--hidden is [32] in the saved run, [64] now",
        ),
        (
            vec!["--batch-size", "10"],
            "--batch-size is 50 in the saved run, 10 now",
        ),
        (
            vec!["--optimizer", "sgd"],
            "--optimizer is \"adam\" in the saved run, \"sgd\" now",
        ),
        (
            vec!["--train-rows", "500"],
            "--train-rows is 600 in the saved run, 500 now",
        ),
    ];
    let folder = stopped.display().to_string();
    for (flags, expected) in refusals {
        let mut command = vec!["train", "--resume", &folder];
        command.extend(flags);
        assert_refused(&command, expected);
    }
    let output = stdout_of(nabla().args(["--resume", &folder, "--epochs", "5"]));
    assert!(output.contains("resumed after epoch 2"), "{output}");
    let bytes = |run: &Path| std::fs::read(run.join("model.safetensors")).unwrap();
    assert!(
        bytes(&straight) == bytes(&stopped),
        "the resumed model differs from the straight run's"
    );
    let rows = |run: &Path, name: &str| column(&run.join("log.csv"), name);
    for name in [
        "epoch",
        "partial",
        "train_loss",
        "val_loss",
        "test_acc",
        "lr",
        "epochs",
        "extras",
    ] {
        let expected = rows(&straight, name);
        let found = rows(&stopped, name);
        if name == "epochs" {
            // The first two rows were logged when the run was to stop after 2 epochs.
            assert_eq!(found, ["2", "2", "5", "5", "5"]);
        } else {
            assert_eq!(found, expected, "{name}");
        }
    }
}

#[test]
fn ctrl_c_then_resume_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, interrupted) = (dir.path().join("straight"), dir.path().join("interrupted"));
    let args = |out: &Path| {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("nabla"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "train",
                "--dataset",
                "mnist",
                "--train-rows",
                "20000",
                "--test-rows",
                "2000",
            ])
            .args([
                "--hidden",
                "64",
                "--epochs",
                "4",
                "--shuffle",
                "--momentum",
                "0.9",
                "--threads",
                "2",
            ])
            .arg("--out")
            .arg(out);
        command
    };
    assert!(args(&straight).output().unwrap().status.success());
    // Interrupt the second run once its first epoch is logged (part-way through epoch 2
    // or 3, wherever the signal lands), then resume the folder.
    let mut child = args(&interrupted)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("epoch") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() > 0,
            "ended early"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("resume with --resume"), "{stderr}");
    let resumed = std::process::Command::new(assert_cmd::cargo::cargo_bin("nabla"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["train", "--quiet", "--resume"])
        .arg(&interrupted)
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let bytes = |run: &Path| std::fs::read(run.join("model.safetensors")).unwrap();
    assert!(
        bytes(&straight) == bytes(&interrupted),
        "after {stderr}: the resumed model differs"
    );
    for name in [
        "epoch",
        "partial",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "lr",
    ] {
        assert_eq!(
            column(&interrupted.join("log.csv"), name),
            column(&straight.join("log.csv"), name),
            "{name} after {stderr}"
        );
    }
}

#[test]
fn eval_json_and_the_confusion_heat_map() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    assert!(folder_run(&out, &["--epochs", "2"]).status.success());
    let model = out.join("model.safetensors");
    let report: serde_json::Value = serde_json::from_str(&stdout_of(
        nabla_subcommand("eval").arg("--model").arg(&model).args([
            "--train-rows",
            "600",
            "--test-rows",
            "100",
            "--json",
        ]),
    ))
    .unwrap();
    let test = &report["test"];
    let confusion: Vec<Vec<u64>> = serde_json::from_value(test["confusion"].clone()).unwrap();
    let trace: u64 = (0..10).map(|c| confusion[c][c]).sum();
    assert_eq!(trace, test["correct"].as_u64().unwrap());
    assert_eq!(confusion.iter().flatten().sum::<u64>(), 100);
    assert_eq!(test["per_class"].as_array().unwrap().len(), 10);
    let f1: Vec<f64> = test["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["f1"].as_f64().unwrap())
        .collect();
    let macro_f1 = test["macro"]["f1"].as_f64().unwrap();
    assert!((macro_f1 - f1.iter().sum::<f64>() / 10.0).abs() < 1e-12);
    // The text form has the same numbers.
    let text = stdout_of(nabla_subcommand("eval").arg("--model").arg(&model).args([
        "--train-rows",
        "600",
        "--test-rows",
        "100",
    ]));
    assert!(
        text.contains(&format!(
            "macro {:>9.4}",
            test["macro"]["precision"].as_f64().unwrap()
        )),
        "{text}"
    );
    // The heat map: one shaded cell and one count per pair of classes.
    let svg = dir.path().join("confusion.svg");
    stdout_of(
        nabla_subcommand("plot")
            .arg("--model")
            .arg(&model)
            .args(["--train-rows", "600", "--test-rows", "100", "-o"])
            .arg(&svg),
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    let document = roxmltree::Document::parse(&text).unwrap();
    let cells = document
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .count();
    assert!(cells >= 100, "{cells} rectangles");
    let counts: u64 = document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .iter()
        .skip(21)
        .filter_map(|t| t.trim().parse::<u64>().ok())
        .sum();
    assert_eq!(counts, 100, "the cell counts add up to the test rows");
}
