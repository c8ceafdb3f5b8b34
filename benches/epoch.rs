//! One training epoch (training only: forward, backward and update, not the evaluation)
//! of 784-256-10 ReLU in f32, on the 3,000-row subset and on full MNIST, at batch 50 and
//! 256, with OpenBLAS's threading on all cores. Ids: `openblas/{subset,mnist}/BATCH`, and
//! `openblas/mnist-dense-f32/BATCH`: full MNIST held as f32 instead of 8-bit pixels (the
//! measurement behind keeping pixels compact). Group `load`: reading the bundled data.
//!
//! Group `sliced_step`: the per-core step (`--gemm sliced`) against OpenBLAS's threads
//! (`--gemm openblas`) on all cores, one epoch of full MNIST at batch 50, 256 and 1000,
//! and of the first 3,000 rows at batch 1; ids `sliced_step/{sliced,openblas}/BATCH`,
//! run back to back per batch size. The choice behind `auto`
//! ([`nabla::threads::auto_threading`]) comes from here.
//!
//! ```text
//! cargo bench --bench epoch            # about 2 minutes
//! ```

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nabla::data::{self, Dataset, Features};
use nabla::threads::{self, GemmThreading};
use nabla::train::{self, TrainConfig};
use nabla::{ActivationKind, Init, MultiLayerPerceptron};

fn epochs(c: &mut Criterion) {
    threads::set_gemm_threading(GemmThreading::OpenBlas, threads::available_cores());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let sets: [(&str, Dataset<f32>); 2] = [
        (
            "subset",
            data::mnist_subset(&root.join("mnist-subset")).expect("bundled subset"),
        ),
        (
            "mnist",
            data::mnist(&root.join("mnist")).expect("bundled MNIST"),
        ),
    ];
    let mut group = c.benchmark_group("epoch");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let mnist = &sets[1].1;
    let dense = Dataset::new(
        Features::Dense(mnist.train_x.to_dense()),
        mnist.train_y.clone(),
        Features::Dense(mnist.test_x.head(1).to_dense()),
        mnist.test_y.slice(ndarray::s![..1]).to_owned(),
        mnist.classes,
    )
    .expect("same shapes");
    let variants = [
        (sets[0].0, &sets[0].1),
        (sets[1].0, &sets[1].1),
        ("mnist-dense-f32", &dense),
    ];
    for (name, dataset) in variants {
        // The evaluation is not timed: the training loop reports its own seconds.
        let evaluation_free = dataset.head(usize::MAX, 1);
        group.throughput(Throughput::Elements(dataset.train_y.len() as u64));
        for batch in [50, 256] {
            group.bench_with_input(
                BenchmarkId::new(format!("openblas/{name}"), batch),
                &batch,
                |b, &batch| {
                    let start = MultiLayerPerceptron::<f32>::from_sizes(
                        &[784, 256, 10],
                        ActivationKind::Relu,
                        Init::Uniform,
                        10701,
                    )
                    .unwrap();
                    b.iter_custom(|iterations| {
                        let mut model = start.clone();
                        let config = TrainConfig::new(iterations as usize, 0.01, batch, 10701);
                        let history =
                            train::train_with(&mut model, &evaluation_free, &config, &mut ())
                                .unwrap();
                        Duration::from_secs_f64(
                            history.epochs.iter().map(|e| e.train_seconds).sum(),
                        )
                    })
                },
            );
        }
    }
    group.finish();
}

/// Seconds of training (evaluation excluded) of `iterations` epochs of 784-256-10 ReLU
/// f32 on `dataset` at `batch`, with the GEMMs parallelised as `threading`.
fn training_seconds(
    start: &MultiLayerPerceptron<f32>,
    dataset: &Dataset<f32>,
    batch: usize,
    threading: GemmThreading,
    iterations: u64,
) -> Duration {
    threads::set_gemm_threading(threading, threads::available_cores());
    let mut model = start.clone();
    let config = TrainConfig::new(iterations as usize, 0.01, batch, 10701);
    let history = train::train_with(&mut model, dataset, &config, &mut ()).unwrap();
    Duration::from_secs_f64(history.epochs.iter().map(|e| e.train_seconds).sum())
}

fn sliced_step(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mnist: Dataset<f32> = data::mnist(&root.join("mnist")).expect("bundled MNIST");
    let start = MultiLayerPerceptron::<f32>::from_sizes(
        &[784, 256, 10],
        ActivationKind::Relu,
        Init::Uniform,
        10701,
    )
    .unwrap();
    let mut group = c.benchmark_group("sliced_step");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    for batch in [1, 50, 256, 1000] {
        let rows = if batch == 1 { 3000 } else { usize::MAX };
        let dataset = mnist.head(rows, 1);
        group.throughput(Throughput::Elements(dataset.train_y.len() as u64));
        for threading in [GemmThreading::Sliced, GemmThreading::OpenBlas] {
            group.bench_with_input(
                BenchmarkId::new(threading.name(), batch),
                &batch,
                |b, &batch| {
                    b.iter_custom(|iterations| {
                        training_seconds(&start, &dataset, batch, threading, iterations)
                    })
                },
            );
        }
    }
    group.finish();
    threads::set_gemm_threading(GemmThreading::OpenBlas, threads::available_cores());
}

fn loading(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut group = c.benchmark_group("load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("subset-csv/f32", |b| {
        b.iter(|| data::mnist_subset::<f32>(&root.join("mnist-subset")).expect("bundled subset"))
    });
    group.bench_function("mnist-idx/f32", |b| {
        b.iter(|| data::mnist::<f32>(&root.join("mnist")).expect("bundled MNIST"))
    });
    group.finish();
}

criterion_group!(benches, epochs, sliced_step, loading);
criterion_main!(benches);
