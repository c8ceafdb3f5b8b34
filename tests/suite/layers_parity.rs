//! Issue 22's layers against PyTorch: one epoch in f64 from nabla's initial weights
//! equals PyTorch's to 1e-10, for networks that hold every layer kind between them.
//!
//! The data are exact in both (integers over 1000), the weights are nabla's seeded draw,
//! and dropout uses nabla's masks in both. PyTorch's results are files in
//! `tests/fixtures/torch_layers/`, written by `scripts/torch_layers_reference.py` from
//! what this test writes when `NABLA_TORCH_FIXTURES=<dir>` is set (the initial models and
//! the masks); PyTorch is not needed to run the test. Each `*.trained.safetensors` is a
//! PyTorch `state_dict` saved by `safetensors.torch.save_file`: loading it here is the
//! PyTorch-to-nabla direction, and the script's `load_state_dict(..., strict=True)` of
//! nabla's initial model the other.

use std::path::{Path, PathBuf};

use nabla::checkpoint;
use nabla::layers::{Layer, StateValues};
use nabla::network::{self, spec, spec::Shape};
use nabla::{Init, Module, MultiLayerPerceptron, Sgd, SoftmaxCrossEntropy};
use ndarray::{s, Array1, Array2, ArrayD};

/// One network: its name, spec, the shape of an example, the classes.
struct Case {
    name: &'static str,
    spec: &'static str,
    input: Shape,
    classes: usize,
}

const CASES: [Case; 3] = [
    Case {
        name: "cnn",
        spec: "Conv2d(4, 3, padding=1), ReLU, MaxPool2d(2), \
               Conv2d(6, (3, 2), stride=(2, 1), padding=(1, 0)), BatchNorm2d, LeakyReLU(0.1), \
               AvgPool2d(2, stride=1), Flatten, Dropout(0.3), Linear(5)",
        input: Shape::Image {
            channels: 2,
            height: 8,
            width: 8,
        },
        classes: 5,
    },
    Case {
        name: "mlp",
        spec: "Linear(12), BatchNorm1d, GELU, Dropout(0.5), Linear(10), LayerNorm, SiLU, \
               Linear(8), ELU(alpha=0.7), Linear(6), GELU(approximate='tanh'), Linear(5), \
               Tanh, Linear(4), Sigmoid, Linear(4), Identity, Linear(3)",
        input: Shape::Flat(10),
        classes: 3,
    },
    Case {
        name: "strided",
        spec: "Conv2d(3, 3, stride=2, padding=1, bias=False), ELU, \
               MaxPool2d(3, stride=2, padding=1), Flatten, LayerNorm, Linear(4)",
        input: Shape::Image {
            channels: 1,
            height: 9,
            width: 9,
        },
        classes: 4,
    },
];

/// Rows of the data set, batch size, learning rate and seed of every case.
const ROWS: usize = 32;
const BATCH: usize = 8;
const LR: f64 = 0.1;
const SEED: u64 = 2207;

/// `x[i, j] = ((i * 7919 + j * 104729) mod 1000) / 1000 - 0.5` and `y[i] = (31 i) mod
/// classes`: exact in any language (the script computes the same).
fn data(case: &Case) -> (Array2<f64>, Array1<usize>) {
    let x = Array2::from_shape_fn((ROWS, case.input.len()), |(i, j)| {
        ((i * 7919 + j * 104_729) % 1000) as f64 / 1000.0 - 0.5
    });
    let y = Array1::from_shape_fn(ROWS, |i| (31 * i) % case.classes);
    (x, y)
}

fn build(case: &Case) -> MultiLayerPerceptron<f64> {
    let layers = spec::parse(case.spec).unwrap();
    network::build(&layers, case.input, Init::Uniform, SEED).unwrap()
}

/// What one epoch gives: the model after it, each batch's loss, each batch's dropout
/// masks (one per dropout layer) and the evaluation-mode logits of every row after it.
struct Epoch {
    model: MultiLayerPerceptron<f64>,
    losses: Vec<f64>,
    masks: Vec<Array2<f64>>,
    logits: Array2<f64>,
}

/// One epoch of plain SGD over in-order batches, then the logits in evaluation mode.
fn epoch(case: &Case) -> Epoch {
    let (x, y) = data(case);
    let mut model = build(case);
    let mut loss = SoftmaxCrossEntropy::new();
    let mut sgd = Sgd::new(LR);
    let (mut losses, mut masks) = (Vec::new(), Vec::new());
    for start in (0..ROWS).step_by(BATCH) {
        let rows = s![start..start + BATCH, ..];
        let value = loss.forward(
            model.forward(x.slice(rows)),
            y.slice(s![start..start + BATCH]),
        );
        losses.push(value);
        for layer in model.layers() {
            if let Layer::Dropout(dropout) = layer {
                masks.push(dropout.mask().to_owned());
            }
        }
        model.backward(loss.backward());
        sgd.step(&mut model);
    }
    model.set_training(false);
    let logits = model.forward(x.view()).to_owned();
    model.set_training(true);
    Epoch {
        model,
        losses,
        masks,
        logits,
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch_layers")
}

/// With `NABLA_TORCH_FIXTURES=<dir>`: writes each case's initial model and masks there,
/// for `scripts/torch_layers_reference.py`.
fn write_inputs_for_pytorch(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for case in &CASES {
        checkpoint::save(
            &build(case),
            &dir.join(format!("{}.init.safetensors", case.name)),
        )
        .unwrap();
        let run = epoch(case);
        let mut npz = ndarray_npy::NpzWriter::new(
            std::fs::File::create(dir.join(format!("{}.masks.npz", case.name))).unwrap(),
        );
        for (index, mask) in run.masks.iter().enumerate() {
            npz.add_array(format!("{index}"), mask).unwrap();
        }
        npz.finish().unwrap();
    }
}

#[test]
fn one_epoch_of_every_layer_matches_pytorch() {
    if let Some(dir) = std::env::var_os("NABLA_TORCH_FIXTURES") {
        write_inputs_for_pytorch(Path::new(&dir));
    }
    for case in &CASES {
        let run = epoch(case);
        // PyTorch's trained state_dict, loaded into a fresh network of the same layers.
        let mut torch = build(case);
        checkpoint::load_weights_into(
            &mut torch,
            &fixtures().join(format!("{}.trained.safetensors", case.name)),
        )
        .unwrap();
        let mut compared = 0;
        for (position, (ours, theirs)) in run.model.layers().iter().zip(torch.layers()).enumerate()
        {
            for (name, _) in ours.state_entries() {
                let key = format!("{}: {position}.{name}", case.name);
                match (
                    ours.state_values(name).unwrap(),
                    theirs.state_values(name).unwrap(),
                ) {
                    (StateValues::Floats(a), StateValues::Floats(b)) => {
                        let worst = a
                            .iter()
                            .zip(&b)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0.0, f64::max);
                        assert!(worst < 1e-10, "{key}: max |nabla - PyTorch| = {worst:e}");
                        compared += a.len();
                    }
                    (StateValues::Count(a), StateValues::Count(b)) => assert_eq!(a, b, "{key}"),
                    (a, b) => panic!("{key}: {a:?} vs {b:?}"),
                }
            }
        }
        assert!(
            compared > 50,
            "{}: only {compared} values compared",
            case.name
        );
        let outputs: ndarray_npy::NpzReader<std::fs::File> = ndarray_npy::NpzReader::new(
            std::fs::File::open(fixtures().join(format!("{}.outputs.npz", case.name))).unwrap(),
        )
        .unwrap();
        let mut outputs = outputs;
        let losses: ArrayD<f64> = outputs.by_name("losses").unwrap();
        let logits: ArrayD<f64> = outputs.by_name("logits").unwrap();
        for (batch, (a, b)) in run.losses.iter().zip(losses.iter()).enumerate() {
            assert!(
                (a - b).abs() < 1e-12,
                "{} batch {batch} loss: {a} vs PyTorch {b}",
                case.name
            );
        }
        assert_eq!(logits.len(), run.logits.len());
        let worst = run
            .logits
            .iter()
            .zip(logits.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            worst < 1e-10,
            "{}: evaluation logits differ by {worst:e}",
            case.name
        );
    }
}

/// Early stopping keeps the best epoch's batch-normalisation statistics with its
/// weights: the restored model equals the same run stopped at that epoch, running mean
/// and variance included.
#[test]
fn early_stopping_restores_the_best_epochs_running_statistics() {
    use nabla::data::{Dataset, Features};
    use nabla::train::{self, TrainConfig};
    let x = Array2::from_shape_fn((200, 10), |(i, j)| {
        ((i * 7919 + j * 104_729) % 1000) as f64 / 1000.0 - 0.5
    });
    let y = Array1::from_shape_fn(200, |i| (31 * i) % 3);
    let data = Dataset::new(
        Features::Dense(x.clone()),
        y.clone(),
        Features::Dense(x),
        y,
        3,
    )
    .unwrap()
    .split_validation(0.3, 5)
    .unwrap();
    let spec = spec::parse("Linear(32), BatchNorm1d, ReLU, Dropout(0.2), Linear(3)").unwrap();
    let fresh = || network::build::<f64>(&spec, Shape::Flat(10), Init::Uniform, 3).unwrap();
    let mut config = TrainConfig::new(40, 0.3, 16, 3);
    config.patience = Some(3);
    let mut stopped = fresh();
    let history = train::train_with(&mut stopped, &data, &config, &mut ()).unwrap();
    let best = history.best_epoch.unwrap();
    assert!(
        best < history.epochs.len(),
        "no later epoch to undo (best {best})"
    );
    config.patience = None;
    config.epochs = best;
    let mut straight = fresh();
    train::train_with(&mut straight, &data, &config, &mut ()).unwrap();
    let mut compared = 0;
    for (position, (a, b)) in stopped.layers().iter().zip(straight.layers()).enumerate() {
        for (name, _) in a.state_entries() {
            if let (Some(StateValues::Floats(a)), Some(StateValues::Floats(b))) =
                (a.state_values(name), b.state_values(name))
            {
                assert_eq!(a, b, "{position}.{name} after restoring epoch {best}");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 8, "weights, biases and both running statistics");
}
