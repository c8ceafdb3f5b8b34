//! The column-split GEMM (`--gemm split`) against the plain-loop reference.
//!
//! Its own test binary: the GEMM threading mode is process-wide, and switching it here
//! must not change which path the other tests take.

use nabla::gemm::{gemm, layout_copies};
use nabla::reference::matmul_naive;
use nabla::threads::{self, GemmThreading};
use nabla::Float;
use ndarray::{Array2, ArrayView2};
use rand::Rng;

fn random<F: Float>(rows: usize, cols: usize, seed: u64) -> Array2<F> {
    let mut rng = nabla::init::rng(seed);
    Array2::from_shape_simple_fn((rows, cols), || F::from_f64(rng.random_range(-1.0..1.0)))
}

/// `alpha a b + beta c` by plain loops, in f64.
fn expected<F: Float>(
    alpha: f64,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: f64,
    c: &Array2<F>,
) -> Array2<f64> {
    let product = matmul_naive(
        a.mapv(<F as Float>::to_f64).view(),
        b.mapv(<F as Float>::to_f64).view(),
    );
    product * alpha + c.mapv(<F as Float>::to_f64) * beta
}

fn check_products<F: Float>(tolerance: f64) {
    // (m, k, n): odd widths, from single rows and columns to products large enough to be
    // split into several column blocks (n >= 32 and 2mnk >= 2 MFLOP).
    let shapes = [
        (1, 1, 1),
        (3, 257, 1),
        (257, 3, 3),
        (257, 257, 257),
        (50, 784, 257),
        (257, 50, 785),
        (1, 4099, 1027),
    ];
    for (index, &(m, k, n)) in shapes.iter().enumerate() {
        let seed = index as u64 * 10;
        // Both layouts of each operand: stored as (m, k) or as the transpose of (k, m).
        for (a_transposed, b_transposed) in
            [(false, false), (true, false), (false, true), (true, true)]
        {
            let a_stored: Array2<F> = if a_transposed {
                random(k, m, seed)
            } else {
                random(m, k, seed)
            };
            let b_stored: Array2<F> = if b_transposed {
                random(n, k, seed + 1)
            } else {
                random(k, n, seed + 1)
            };
            let a = if a_transposed {
                a_stored.t()
            } else {
                a_stored.view()
            };
            let b = if b_transposed {
                b_stored.t()
            } else {
                b_stored.view()
            };
            let start: Array2<F> = random(m, n, seed + 2);
            let mut c = start.clone();
            let (alpha, beta) = (-0.75, 0.5);
            gemm(F::from_f64(alpha), a, b, F::from_f64(beta), c.view_mut());
            let want = expected(alpha, a, b, beta, &start);
            let scale = (k as f64).sqrt();
            let worst = c
                .iter()
                .zip(want.iter())
                .map(|(&got, &want)| (<F as Float>::to_f64(got) - want).abs())
                .fold(0.0, f64::max);
            assert!(
                worst <= tolerance * scale,
                "{} split gemm {m}x{k}x{n} (a transposed {a_transposed}, b transposed {b_transposed}): off by {worst:e}",
                F::NAME
            );
        }
    }
}

#[test]
fn split_gemm_matches_the_plain_loops_in_every_layout() {
    // Four threads, so that even on a 2-core machine the products split into blocks.
    threads::set_threads(4, GemmThreading::Split).unwrap();
    assert_eq!(threads::gemm_threading(), GemmThreading::Split);
    assert_eq!(
        threads::blas_threads(),
        1,
        "split mode runs one-thread OpenBLAS calls"
    );
    let copies = layout_copies();
    check_products::<f64>(1e-13);
    check_products::<f32>(2e-6);
    assert_eq!(
        layout_copies(),
        copies,
        "every layout here reaches BLAS without a copy"
    );
    threads::set_threads(4, GemmThreading::OpenBlas).unwrap();
    check_products::<f64>(1e-13);
}
