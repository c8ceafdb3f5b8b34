//! Kernel benchmarks, every id naming its backend:
//! - `forward_product` / `weight_gradient_product`: the first layer's GEMMs for
//!   `(batch, 784) x (784, 256)` and `(256, batch) x (batch, 784)`, batch 50/200/1000:
//!   `naive/` (textbook triple loop), `reference/` (the plain-loop oracle), `openblas/`;
//! - `gemm_threading`: the same products with OpenBLAS's threads vs nabla's column split;
//! - `activation` and `softmax_cross_entropy`: `serial/` vs `rayon/` across sizes, the
//!   measurement behind `threads::DEFAULT_PARALLEL_MIN_WORK`.
//!
//! ```text
//! cargo bench --bench kernels                 # all groups (about 6 minutes)
//! cargo bench --bench kernels -- activation   # one group
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nabla::gemm;
use nabla::threads::{self, GemmThreading};
use nabla::{reference, Activation, ActivationKind, Module, SoftmaxCrossEntropy};
use ndarray::{Array1, Array2};

const BATCHES: [usize; 3] = [50, 200, 1000];
const INPUTS: usize = 784;
const HIDDEN: usize = 256;

fn matrix(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 31 + j * 17 + seed) % 101) as f32 / 101.0 - 0.5
    })
}

fn flop(batch: usize) -> u64 {
    2 * (batch * INPUTS * HIDDEN) as u64
}

fn use_all_cores_in_openblas() {
    threads::set_gemm_threading(GemmThreading::OpenBlas, threads::available_cores());
}

fn products(c: &mut Criterion) {
    use_all_cores_in_openblas();
    let weights = matrix(HIDDEN, INPUTS, 1);
    let bias = Array1::<f32>::zeros(HIDDEN);
    let mut group = c.benchmark_group("forward_product");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for batch in BATCHES {
        let x = matrix(batch, INPUTS, 2);
        let mut out = Array2::<f32>::zeros((batch, HIDDEN));
        group.throughput(Throughput::Elements(flop(batch)));
        if batch <= 200 {
            group.bench_with_input(BenchmarkId::new("naive", batch), &batch, |b, _| {
                b.iter(|| reference::matmul_naive(x.view(), weights.t()))
            });
        }
        group.bench_with_input(BenchmarkId::new("reference", batch), &batch, |b, _| {
            b.iter(|| reference::linear_forward(x.view(), weights.view(), bias.view()))
        });
        group.bench_with_input(BenchmarkId::new("openblas", batch), &batch, |b, _| {
            b.iter(|| gemm::gemm(1.0, x.view(), weights.t(), 0.0, out.view_mut()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("weight_gradient_product");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for batch in BATCHES {
        let x = matrix(batch, INPUTS, 3);
        let grad_output = matrix(batch, HIDDEN, 4);
        let mut d_weights = Array2::<f32>::zeros((HIDDEN, INPUTS));
        group.throughput(Throughput::Elements(flop(batch)));
        if batch <= 200 {
            group.bench_with_input(BenchmarkId::new("naive", batch), &batch, |b, _| {
                b.iter(|| reference::matmul_naive(grad_output.t(), x.view()))
            });
        }
        group.bench_with_input(BenchmarkId::new("reference", batch), &batch, |b, _| {
            b.iter(|| reference::weight_gradient(x.view(), grad_output.view()))
        });
        group.bench_with_input(BenchmarkId::new("openblas", batch), &batch, |b, _| {
            b.iter(|| gemm::gemm(1.0, grad_output.t(), x.view(), 0.0, d_weights.view_mut()))
        });
    }
    group.finish();
}

fn gemm_threading(c: &mut Criterion) {
    let cores = threads::available_cores();
    let weights = matrix(HIDDEN, INPUTS, 1);
    let mut group = c.benchmark_group("gemm_threading");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(2));
    for batch in BATCHES {
        let x = matrix(batch, INPUTS, 2);
        let grad_output = matrix(batch, HIDDEN, 4);
        let mut out = Array2::<f32>::zeros((batch, HIDDEN));
        let mut d_weights = Array2::<f32>::zeros((HIDDEN, INPUTS));
        group.throughput(Throughput::Elements(flop(batch)));
        for (name, threading) in [
            ("openblas", GemmThreading::OpenBlas),
            ("split", GemmThreading::Split),
        ] {
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/forward"), batch),
                &batch,
                |b, _| {
                    threads::set_gemm_threading(threading, cores);
                    b.iter(|| gemm::gemm(1.0, x.view(), weights.t(), 0.0, out.view_mut()))
                },
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/weight_gradient"), batch),
                &batch,
                |b, _| {
                    threads::set_gemm_threading(threading, cores);
                    b.iter(|| gemm::gemm(1.0, grad_output.t(), x.view(), 0.0, d_weights.view_mut()))
                },
            );
        }
    }
    use_all_cores_in_openblas();
    group.finish();
}

/// Element counts from one batch-50 hidden layer (12,800) to an evaluation chunk of 1,000
/// rows of 384 units.
const ELEMENT_SIZES: [usize; 5] = [1 << 12, 1 << 14, 1 << 15, 1 << 17, 1 << 19];

/// Runs `work` on a thread of rayon's pool, as training does (`train::train_with`), so
/// that a parallel kernel runs one part on the calling thread.
fn on_pool(work: impl FnOnce() + Send) {
    rayon::scope(|_| work());
}

fn threshold_for(backend: &str) -> usize {
    if backend == "rayon" {
        0
    } else {
        usize::MAX
    }
}

fn activations(c: &mut Criterion) {
    let mut group = c.benchmark_group("activation");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(1));
    for elements in ELEMENT_SIZES {
        let x = matrix(elements / 256, 256, 5);
        let upstream = matrix(elements / 256, 256, 6);
        group.throughput(Throughput::Elements(elements as u64));
        for backend in ["serial", "rayon"] {
            let mut sigmoid = Activation::<f32>::new(ActivationKind::Sigmoid);
            let mut relu = Activation::<f32>::new(ActivationKind::Relu);
            group.bench_with_input(
                BenchmarkId::new(format!("{backend}/sigmoid"), elements),
                &elements,
                |b, _| {
                    threads::set_parallel_min_work(threshold_for(backend));
                    on_pool(|| {
                        b.iter(|| {
                            sigmoid.forward(x.view());
                            black_box(sigmoid.backward(upstream.view()));
                        })
                    })
                },
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{backend}/relu"), elements),
                &elements,
                |b, _| {
                    threads::set_parallel_min_work(threshold_for(backend));
                    on_pool(|| {
                        b.iter(|| {
                            relu.forward(x.view());
                            black_box(relu.backward(upstream.view()));
                        })
                    })
                },
            );
        }
    }
    threads::set_parallel_min_work(threads::DEFAULT_PARALLEL_MIN_WORK);
    group.finish();
}

fn softmax_cross_entropy(c: &mut Criterion) {
    let mut group = c.benchmark_group("softmax_cross_entropy");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(1));
    for elements in ELEMENT_SIZES {
        let rows = elements / 10;
        let logits = matrix(rows, 10, 7);
        let labels: Array1<usize> = (0..rows).map(|i| i % 10).collect();
        group.throughput(Throughput::Elements((rows * 10) as u64));
        for backend in ["serial", "rayon"] {
            let mut loss = SoftmaxCrossEntropy::<f32>::new();
            group.bench_with_input(BenchmarkId::new(backend, rows * 10), &rows, |b, _| {
                threads::set_parallel_min_work(threshold_for(backend));
                on_pool(|| {
                    b.iter(|| {
                        black_box(loss.forward(logits.view(), labels.view()));
                        black_box(loss.backward());
                    })
                })
            });
        }
    }
    threads::set_parallel_min_work(threads::DEFAULT_PARALLEL_MIN_WORK);
    group.finish();
}

criterion_group!(
    benches,
    products,
    gemm_threading,
    activations,
    softmax_cross_entropy
);
criterion_main!(benches);
