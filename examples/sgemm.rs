//! Measures this machine's OpenBLAS sgemm throughput: `C = A B` for `A: (m, k)`,
//! `B: (k, n)`, median of repeated runs, printed as GFLOP/s.
//!
//!     cargo run --release --example sgemm -- 2048 2048 2048 --threads 2
//!     cargo run --release --example sgemm -- 50 256 784 --transpose-b --threads 1

use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::Array2;

fn main() {
    let mut sizes = Vec::new();
    let mut threads = nabla::threads::available_cores();
    let mut transpose_b = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|t| t.parse().ok())
                    .expect("--threads N")
            }
            "--transpose-b" => transpose_b = true,
            size => sizes.push(size.parse::<usize>().expect("sizes are integers")),
        }
    }
    let [m, n, k] = match sizes[..] {
        [] => [2048, 2048, 2048],
        [m, n, k] => [m, n, k],
        _ => panic!("usage: sgemm [M N K] [--threads T] [--transpose-b]"),
    };
    nabla::threads::set_blas_threads(threads);
    let a = Array2::<f32>::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 13) as f32 / 13.0);
    let b_stored = if transpose_b {
        Array2::<f32>::from_shape_fn((n, k), |(i, j)| ((i * 5 + j) % 11) as f32 / 11.0)
    } else {
        Array2::<f32>::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 11) as f32 / 11.0)
    };
    let b = if transpose_b {
        b_stored.t()
    } else {
        b_stored.view()
    };
    let mut c = Array2::<f32>::zeros((m, n));
    let flop = 2.0 * (m * n * k) as f64;
    // Repeat so that each sample takes at least ~20 ms, then take the median of 15 samples.
    general_mat_mul(1.0, &a, &b, 0.0, &mut c);
    let once = Instant::now();
    general_mat_mul(1.0, &a, &b, 0.0, &mut c);
    let repeats = ((0.02 / once.elapsed().as_secs_f64().max(1e-7)) as usize).clamp(1, 100_000);
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..repeats {
                general_mat_mul(1.0, &a, &b, 0.0, &mut c);
            }
            flop * repeats as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    println!(
        "sgemm {m}x{n}x{k} threads={threads}: {:.1} GFLOP/s",
        samples[samples.len() / 2]
    );
}
