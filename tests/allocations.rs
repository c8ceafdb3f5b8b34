//! The training step allocates nothing once its buffers exist.
//!
//! A counting global allocator (its own test binary, one test, so nothing else allocates
//! concurrently) records the heap allocations made while training runs: none may happen
//! from the second batch of the first epoch on, nor in any later epoch, evaluation
//! included, for every float type, feature kind, optimizer setting and GEMM threading
//! mode, on both sides of the rayon threshold. (OpenBLAS's internal buffers come from its
//! own allocator, outside Rust's.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use nabla::data::{Dataset, Features};
use nabla::gemm;
use nabla::optim::schedule::ScheduleKind;
use nabla::optim::OptimizerKind;
use nabla::threads::{self, GemmThreading};
use nabla::train::{self, EpochStats, Observer, TrainConfig};
use nabla::{ActivationKind, Float, Init, MultiLayerPerceptron};
use ndarray::{Array1, Array2};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Counts allocations between the end of the first batch and the end of the epoch's
/// last batch, and across whole later epochs (from their start to after evaluation).
#[derive(Default)]
struct AllocationProbe {
    batches: usize,
    first_batch_done: usize,
    within_first_epoch: Option<usize>,
    later_epochs_started: Option<usize>,
    later_epochs: usize,
}

impl Observer for AllocationProbe {
    fn epoch_started(&mut self, epoch: usize, batches: usize) {
        self.batches = batches;
        if epoch == 2 {
            self.later_epochs_started = Some(allocations());
        }
    }

    fn batch_finished(&mut self, epoch: usize, batch: usize, _loss: f64) {
        if epoch == 1 && batch == 1 {
            self.first_batch_done = allocations();
        }
        if epoch == 1 && batch == self.batches {
            self.within_first_epoch = Some(allocations() - self.first_batch_done);
        }
    }

    fn epoch_finished(&mut self, _stats: &EpochStats) {
        if let Some(start) = self.later_epochs_started {
            self.later_epochs = allocations() - start;
        }
    }
}

/// 1,037 rows (batches of 50 end with a partial batch of 37) of 8-bit pixels, or the same
/// values as dense floats (as a CSV file loads them).
fn dataset<F: Float>(dense: bool) -> Dataset<F> {
    let pixels = Array2::from_shape_fn((1037, 784), |(i, j)| ((i * 31 + j * 7) % 256) as u8);
    let labels: Array1<usize> = (0..1037).map(|i| i % 10).collect();
    let features = |rows: Array2<u8>| {
        if dense {
            Features::Dense(rows.mapv(F::from_pixel))
        } else {
            Features::Pixels(rows)
        }
    };
    Dataset::new(
        features(pixels.clone()),
        labels.clone(),
        features(pixels.slice(ndarray::s![..300, ..]).to_owned()),
        labels.slice(ndarray::s![..300]).to_owned(),
        10,
    )
    .unwrap()
    .split_validation(0.1, 1)
    .unwrap()
}

/// Trains 3 epochs and asserts that nothing was allocated after the first batch.
fn assert_allocation_free<F: Float>(
    setting: &str,
    hidden: usize,
    activation: ActivationKind,
    dense: bool,
    config: TrainConfig,
) {
    let data = dataset::<F>(dense);
    let model =
        MultiLayerPerceptron::<F>::from_sizes(&[784, hidden, 10], activation, Init::Uniform, 1)
            .unwrap();
    let setting = format!(
        "{setting} ({} {activation} {hidden}, {})",
        F::NAME,
        if dense { "dense" } else { "pixels" }
    );
    assert_trains_allocation_free(model, &data, &config, &setting);
}

/// Trains 3 epochs of a `--layers` network on the 28x28 pixels and asserts that
/// nothing was allocated after the first batch.
fn assert_spec_allocation_free<F: Float>(setting: &str, spec: &str, config: TrainConfig) {
    let data = dataset::<F>(false);
    let input = nabla::network::spec::Shape::Image {
        channels: 1,
        height: 28,
        width: 28,
    };
    let layers = nabla::network::spec::parse(spec).unwrap();
    let model = nabla::network::build::<F>(&layers, input, Init::Uniform, 1).unwrap();
    let setting = format!("{setting} ({} {spec})", F::NAME);
    assert_trains_allocation_free(model, &data, &config, &setting);
}

/// Trains `model` on `data` as `config` says and asserts that nothing was allocated
/// after the first batch of the first epoch, nor in later epochs (evaluation included).
fn assert_trains_allocation_free<F: Float>(
    mut model: MultiLayerPerceptron<F>,
    data: &Dataset<F>,
    config: &TrainConfig,
    setting: &str,
) {
    let mut probe = AllocationProbe::default();
    train::train_with(&mut model, data, config, &mut probe).unwrap();
    assert_eq!(
        probe.within_first_epoch,
        Some(0),
        "{setting}: allocations in batches 2.. of epoch 1"
    );
    assert_eq!(
        probe.later_epochs, 0,
        "{setting}: allocations in epochs 2-3 (training and evaluation)"
    );
}

#[test]
fn training_allocates_nothing_after_the_first_batch() {
    let plain = TrainConfig::new(3, 0.01, 50, 1);
    let shuffled_momentum = TrainConfig {
        shuffle: true,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
        ..plain.clone()
    };
    let mut adam = TrainConfig {
        optimizer: OptimizerKind::Adam,
        weight_decay: 1e-4,
        patience: Some(5),
        ..plain.clone()
    };
    adam.schedule.kind = ScheduleKind::Cosine;
    adam.schedule.warmup_epochs = 1;
    let mut adamw = TrainConfig {
        optimizer: OptimizerKind::AdamW,
        weight_decay: 0.01,
        shuffle: true,
        ..plain.clone()
    };
    adamw.schedule.kind = ScheduleKind::Plateau;
    adamw.schedule.patience = 0;
    let mut stepped = shuffled_momentum.clone();
    stepped.schedule.kind = ScheduleKind::Step;
    stepped.schedule.step_size = 1;
    let copies = gemm::layout_copies();
    let cases = [
        // Below the rayon threshold (ReLU, 64 units) and above it (sigmoid, 256 units at
        // batch 50: the default run's parallel activation and softmax paths).
        ("sgd", 64, ActivationKind::Relu, false, &plain),
        (
            "sgd, momentum, shuffle",
            64,
            ActivationKind::Relu,
            false,
            &shuffled_momentum,
        ),
        ("sgd", 256, ActivationKind::Sigmoid, false, &plain),
        (
            "sgd, momentum, shuffle",
            256,
            ActivationKind::Sigmoid,
            true,
            &shuffled_momentum,
        ),
        // Adam and AdamW with every schedule and early stopping.
        (
            "adam, cosine, warm-up, early stopping",
            256,
            ActivationKind::Relu,
            false,
            &adam,
        ),
        (
            "adamw, plateau, shuffle",
            64,
            ActivationKind::Tanh,
            true,
            &adamw,
        ),
        (
            "sgd, step schedule",
            64,
            ActivationKind::Sigmoid,
            false,
            &stepped,
        ),
    ];
    // Issue 22's layers: a CNN with batch and layer normalisation, dropout and the
    // activations that keep their input, under plain SGD (unfused) and Adam.
    let cnn = "Conv2d(4, 3, padding=1), BatchNorm2d, ReLU, MaxPool2d(2), \
               Conv2d(6, 3, stride=2), GELU, AvgPool2d(2), Flatten, Dropout(0.25), \
               Linear(32), BatchNorm1d, SiLU, Linear(16), LayerNorm, ELU, LeakyReLU, Linear(10)";
    for threading in [GemmThreading::OpenBlas, GemmThreading::Auto] {
        threads::set_threads(Some(2), threading);
        for (name, config) in [("sgd", &plain), ("adam, early stopping", &adam)] {
            assert_spec_allocation_free::<f32>(name, cnn, config.clone());
            assert_spec_allocation_free::<f64>(name, cnn, config.clone());
        }
    }
    for (mode, threading) in [
        ("openblas", GemmThreading::OpenBlas),
        ("split", GemmThreading::Split),
        ("sliced", GemmThreading::Sliced),
        ("auto", GemmThreading::Auto),
    ] {
        threads::set_threads(Some(2), threading);
        for (name, hidden, activation, dense, config) in cases {
            let setting = format!("{mode}, {name}");
            assert_allocation_free::<f32>(&setting, hidden, activation, dense, config.clone());
            assert_allocation_free::<f64>(&setting, hidden, activation, dense, config.clone());
        }
    }
    // Every product of every run above reached OpenBLAS on its stored layout: none was
    // copied first (the GEMM entry counts such copies).
    assert_eq!(
        gemm::layout_copies(),
        copies,
        "a training product took the copying path"
    );
}
