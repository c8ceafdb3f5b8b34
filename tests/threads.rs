//! The column-split GEMM (`--gemm split`) against the plain-loop reference, and the
//! per-core step (`--gemm sliced`) against the one-thread plain step.
//!
//! Its own test binary: the thread settings are process-wide, and switching them here
//! must not change which path the other tests take. The tests here take turns
//! ([`exclusive`]), since each sets the thread counts it measures.

use nabla::gemm::{gemm, layout_copies};
use nabla::reference::matmul_naive;
use nabla::threads::{self, GemmThreading};
use nabla::Float;
use ndarray::{Array2, ArrayView2};
use rand::Rng;

/// Holds the process's thread settings for one test at a time.
fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static SETTINGS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SETTINGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

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
    let _settings = exclusive();
    threads::set_gemm_threading(GemmThreading::Split, 4);
    assert_eq!(threads::gemm_threading(), GemmThreading::Split);
    // As a run holds it: on a pool of 4 (the split's parts), OpenBLAS on one thread.
    threads::on_pool(4, || {
        let _one_thread = threads::BlasLease::new(1);
        assert_eq!(threads::blas_threads(), 1);
        let copies = layout_copies();
        check_products::<f64>(1e-13);
        check_products::<f32>(2e-6);
        assert_eq!(
            layout_copies(),
            copies,
            "every layout here reaches BLAS without a copy"
        );
    });
    threads::set_gemm_threading(GemmThreading::OpenBlas, 4);
    check_products::<f64>(1e-13);
}

fn train_with_blas_threads<F: Float>(blas_threads: usize, threading: GemmThreading) -> Vec<Vec<F>> {
    threads::set_gemm_threading(threading, blas_threads);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-subset");
    let data = nabla::data::mnist_subset::<F>(&dir)
        .unwrap()
        .head(1000, 100);
    let mut model = nabla::MultiLayerPerceptron::<F>::from_sizes(
        &[784, 256, 10],
        nabla::ActivationKind::Sigmoid,
        nabla::Init::Uniform,
        10701,
    )
    .unwrap();
    nabla::train::train_network(&mut model, &data, 2, 0.1, 50, 10701).unwrap();
    model
        .linear_layers()
        .flat_map(|l| [l.weights().iter().copied().collect(), l.bias().to_vec()])
        .collect()
}

fn largest_relative_difference<F: Float>(a: &[Vec<F>], b: &[Vec<F>]) -> f64 {
    let scale = a
        .iter()
        .flatten()
        .map(|v| <F as Float>::to_f64(*v).abs())
        .fold(0.0, f64::max);
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (<F as Float>::to_f64(*x) - <F as Float>::to_f64(*y)).abs())
        .fold(0.0, f64::max)
        / scale
}

/// Trains in a rayon pool of `pool` threads (the split GEMM's parts follow it).
fn train_in_pool<F: Float>(
    pool: usize,
    blas_threads: usize,
    threading: GemmThreading,
) -> Vec<Vec<F>> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(pool)
        .build()
        .unwrap()
        .install(|| train_with_blas_threads::<F>(blas_threads, threading))
}

/// What the README promises about thread counts, measured on 2 epochs of 1,000 subset
/// rows: the same settings give the same bits; OpenBLAS's own threading sums some
/// products in another order for another thread count (here 2e-7 relative in f32 and
/// 4e-16 in f64, far inside the bounds below); the split GEMM and the per-core step give
/// the one-thread OpenBLAS result to within rounding for any pool size (bit for bit with
/// the Cooperlake kernel; 2.5e-7 in f32 and 0 in f64 with the Haswell kernel).
#[test]
fn results_and_thread_counts() {
    let _settings = exclusive();
    for blas_threads in [1, 2, 4] {
        let first = train_with_blas_threads::<f32>(blas_threads, GemmThreading::OpenBlas);
        let again = train_with_blas_threads::<f32>(blas_threads, GemmThreading::OpenBlas);
        assert_eq!(
            first, again,
            "{blas_threads} OpenBLAS threads: two runs differ"
        );
    }
    let one32 = train_with_blas_threads::<f32>(1, GemmThreading::OpenBlas);
    let one64 = train_with_blas_threads::<f64>(1, GemmThreading::OpenBlas);
    for blas_threads in [2, 4] {
        let other = train_with_blas_threads::<f32>(blas_threads, GemmThreading::OpenBlas);
        let difference = largest_relative_difference(&one32, &other);
        assert!(
            difference < 1e-5,
            "f32, 1 vs {blas_threads} OpenBLAS threads: {difference:e}"
        );
        let other = train_with_blas_threads::<f64>(blas_threads, GemmThreading::OpenBlas);
        let difference = largest_relative_difference(&one64, &other);
        assert!(
            difference < 1e-13,
            "f64, 1 vs {blas_threads} OpenBLAS threads: {difference:e}"
        );
    }
    // nabla's own threads (the split GEMM, the per-core step) run one-thread OpenBLAS
    // calls on slices of each product. A slice selects elements of the product; OpenBLAS
    // may still pick another micro-kernel path for a slice's shape (edge blocks, small
    // matrices), so the results equal the one-thread run to within rounding, and with
    // some kernels (Cooperlake's, here) bit for bit.
    for (pool, threading) in [2, 3, 4]
        .into_iter()
        .flat_map(|pool| [(pool, GemmThreading::Split), (pool, GemmThreading::Sliced)])
    {
        let setting = format!("{threading}, {pool} threads");
        let first = train_in_pool::<f32>(pool, pool, threading);
        assert_eq!(
            first,
            train_in_pool::<f32>(pool, pool, threading),
            "f32 {setting}: two runs differ"
        );
        assert_close("f32", &setting, &one32, &first, 1e-6);
        assert_close(
            "f64",
            &setting,
            &one64,
            &train_in_pool::<f64>(pool, pool, threading),
            1e-14,
        );
    }
    assert_eq!(
        train_in_pool::<f32>(1, 1, GemmThreading::Split),
        one32,
        "split on one thread"
    );
}

/// Asserts that `other` is within `tolerance` (largest difference over largest value)
/// of the one-thread run `one`, and says how close it is.
fn assert_close<F: Float>(
    dtype: &str,
    setting: &str,
    one: &[Vec<F>],
    other: &[Vec<F>],
    tolerance: f64,
) {
    let difference = largest_relative_difference(one, other);
    let equal = if one == other { " (bit for bit)" } else { "" };
    eprintln!("{dtype} {setting} vs one thread: {difference:e}{equal}");
    assert!(
        difference <= tolerance,
        "{dtype} {setting} vs one thread: {difference:e} > {tolerance:e}"
    );
}

/// A synthetic problem: `rows` rows of `features` values in [-1, 1), labels from a seeded
/// stream, `classes` classes (odd sizes, so that the last batch is partial).
fn synthetic<F: Float>(features: usize, classes: usize, seed: u64) -> nabla::Dataset<F> {
    let labels = |rows: usize, seed: u64| {
        let mut rng = nabla::init::rng(seed);
        ndarray::Array1::from_shape_simple_fn(rows, || rng.random_range(0..classes))
    };
    nabla::Dataset::new(
        nabla::Features::Dense(random(203, features, seed)),
        labels(203, seed + 1),
        nabla::Features::Dense(random(61, features, seed + 2)),
        labels(61, seed + 3),
        classes,
    )
    .unwrap()
}

/// Trains `sizes` with `activation` for 2 epochs (shuffled batches of 50, weight decay) in
/// a pool of `pool` threads under `threading`; returns every parameter, the per-epoch
/// losses, and the threading the run resolved to.
fn train_sizes<F: Float>(
    sizes: &[usize],
    activation: nabla::ActivationKind,
    pool: usize,
    threading: GemmThreading,
) -> (Vec<Vec<F>>, Vec<f64>, GemmThreading) {
    let config = nabla::train::TrainConfig {
        shuffle: true,
        weight_decay: 1e-3,
        ..nabla::train::TrainConfig::new(2, 0.05, 50, 7)
    };
    train_with_config(sizes, activation, pool, threading, &config)
}

/// [`train_sizes`] with another training configuration.
fn train_with_config<F: Float>(
    sizes: &[usize],
    activation: nabla::ActivationKind,
    pool: usize,
    threading: GemmThreading,
    config: &nabla::train::TrainConfig,
) -> (Vec<Vec<F>>, Vec<f64>, GemmThreading) {
    let data = synthetic::<F>(sizes[0], sizes[sizes.len() - 1], sizes.len() as u64);
    rayon::ThreadPoolBuilder::new()
        .num_threads(pool)
        .build()
        .unwrap()
        .install(|| {
            threads::set_gemm_threading(threading, pool);
            let mut model = nabla::MultiLayerPerceptron::<F>::from_sizes(
                sizes,
                activation,
                nabla::Init::Uniform,
                5,
            )
            .unwrap();
            let mut trainer = nabla::train::Trainer::new(&mut model, &data, config).unwrap();
            let resolved = trainer.threading();
            while trainer.run_epoch(&mut ()).unwrap() {}
            let history = trainer.finish();
            let losses = history
                .epochs
                .iter()
                .flat_map(|epoch| [epoch.train.loss, epoch.test.loss])
                .collect();
            let parameters = model
                .linear_layers()
                .flat_map(|l| [l.weights().iter().copied().collect(), l.bias().to_vec()])
                .collect();
            (parameters, losses, resolved)
        })
}

/// The per-core step (`--gemm sliced`) against the plain step with one-thread OpenBLAS,
/// for 1 to 3 hidden layers of odd widths (split into uneven parts, 16-unit aligned),
/// every activation, f32 and f64, on 2 and 3 cores: within 1e-6 relative in f32 and
/// 1e-14 in f64 (measured: at most 1.0e-7 and 1.9e-16 with the Cooperlake kernel, bit
/// for bit with one hidden layer there; 1.0e-7 and 0 with the Haswell kernel).
#[test]
fn the_sliced_step_equals_the_one_thread_step() {
    let _settings = exclusive();
    fn check<F: Float>() {
        let networks: [&[usize]; 3] = [&[45, 97, 7], &[45, 131, 67, 7], &[45, 67, 150, 75, 7]];
        for sizes in networks {
            for activation in nabla::ActivationKind::ALL {
                let plain = train_sizes::<F>(sizes, activation, 1, GemmThreading::OpenBlas);
                assert_eq!(plain.2, GemmThreading::OpenBlas);
                for cores in [2, 3] {
                    let sliced = train_sizes::<F>(sizes, activation, cores, GemmThreading::Sliced);
                    let setting = format!("{} {sizes:?} {activation}, {cores} cores", F::NAME);
                    assert_eq!(sliced.2, GemmThreading::Sliced, "{setting}: not sliced");
                    let tolerance = if F::NAME == "f32" { 1e-6 } else { 1e-14 };
                    assert_close(F::NAME, &setting, &plain.0, &sliced.0, tolerance);
                    let losses =
                        largest_relative_difference(std::slice::from_ref(&plain.1), &[sliced.1]);
                    assert!(
                        losses <= tolerance,
                        "{setting}: losses differ by {losses:e}"
                    );
                }
            }
        }
    }
    check::<f32>();
    check::<f64>();
    threads::set_gemm_threading(GemmThreading::OpenBlas, threads::available_cores());
}

/// The per-core step with optimizers that keep state (momentum, Nesterov, Adam, AdamW):
/// the sliced backward leaves the gradients and the optimizer steps on them, which
/// equals the one-thread plain step within rounding (bit for bit where the slices'
/// products are, as for plain gradient descent above).
#[test]
fn the_sliced_step_with_stateful_optimizers_equals_the_one_thread_step() {
    use nabla::optim::OptimizerKind;
    let _settings = exclusive();
    fn check<F: Float>() {
        let base = nabla::train::TrainConfig {
            shuffle: true,
            weight_decay: 1e-3,
            ..nabla::train::TrainConfig::new(2, 0.01, 50, 7)
        };
        let configs = [
            (
                "nesterov",
                nabla::train::TrainConfig {
                    momentum: 0.9,
                    nesterov: true,
                    ..base.clone()
                },
            ),
            (
                "adam",
                nabla::train::TrainConfig {
                    optimizer: OptimizerKind::Adam,
                    lr: 0.001,
                    ..base.clone()
                },
            ),
            (
                "adamw",
                nabla::train::TrainConfig {
                    optimizer: OptimizerKind::AdamW,
                    lr: 0.001,
                    ..base.clone()
                },
            ),
        ];
        for (name, config) in &configs {
            for activation in [nabla::ActivationKind::Relu, nabla::ActivationKind::Tanh] {
                let sizes = [45, 131, 67, 7];
                let plain =
                    train_with_config::<F>(&sizes, activation, 1, GemmThreading::OpenBlas, config);
                let sliced =
                    train_with_config::<F>(&sizes, activation, 2, GemmThreading::Auto, config);
                let setting = format!("{} {name} {activation}", F::NAME);
                assert_eq!(
                    sliced.2,
                    GemmThreading::Sliced,
                    "{setting}: auto did not slice"
                );
                let tolerance = if F::NAME == "f32" { 1e-5 } else { 1e-13 };
                assert_close(F::NAME, &setting, &plain.0, &sliced.0, tolerance);
            }
        }
    }
    check::<f32>();
    check::<f64>();
    threads::set_gemm_threading(GemmThreading::OpenBlas, threads::available_cores());
}

/// `auto` picks the per-core step where it applies (more than one thread, a hidden layer
/// wide enough to split; any optimizer and batch), the split GEMM elsewhere, and never
/// OpenBLAS's own threads unless asked.
#[test]
fn auto_resolves_by_width_and_threads() {
    use nabla::threads::auto_threading;
    let auto = GemmThreading::Auto;
    assert_eq!(auto_threading(auto, true, 2), GemmThreading::Sliced);
    assert_eq!(auto_threading(auto, false, 2), GemmThreading::Split);
    assert_eq!(auto_threading(auto, true, 1), GemmThreading::OpenBlas);
    // An explicit choice stays, except a per-core step that cannot apply.
    assert_eq!(
        auto_threading(GemmThreading::Split, true, 2),
        GemmThreading::Split
    );
    assert_eq!(
        auto_threading(GemmThreading::OpenBlas, true, 2),
        GemmThreading::OpenBlas
    );
    assert_eq!(
        auto_threading(GemmThreading::Sliced, false, 2),
        GemmThreading::Split
    );
    // A network too narrow to slice takes the split GEMM.
    let _settings = exclusive();
    let narrow = train_sizes::<f64>(
        &[45, 40, 7],
        nabla::ActivationKind::Relu,
        2,
        GemmThreading::Sliced,
    );
    assert_eq!(
        narrow.2,
        GemmThreading::Split,
        "40 units cannot be split in two blocks of 32"
    );
    let wide = train_sizes::<f64>(
        &[45, 64, 7],
        nabla::ActivationKind::Relu,
        2,
        GemmThreading::Auto,
    );
    assert_eq!(wide.2, GemmThreading::Sliced);
    threads::set_gemm_threading(GemmThreading::OpenBlas, threads::available_cores());
}

/// Orthogonal initialisation goes through LAPACK's QR (OpenBLAS, threaded): its weights
/// must not depend on OpenBLAS's thread count.
#[test]
fn orthogonal_weights_do_not_depend_on_the_thread_count() {
    let _settings = exclusive();
    let draw = |blas_threads: usize| {
        threads::set_blas_threads(blas_threads);
        let mut rng = nabla::init::rng(3);
        let w: Array2<f64> = nabla::init::weights(nabla::Init::Orthogonal, 512, 784, &mut rng);
        w.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    let one = draw(1);
    for blas_threads in [2, 4] {
        let other = draw(blas_threads);
        let differing = one.iter().zip(&other).filter(|(a, b)| a != b).count();
        assert!(
            differing == 0,
            "{blas_threads} OpenBLAS threads: {differing} weights differ"
        );
    }
    threads::set_blas_threads(threads::available_cores());
}

/// An operand BLAS cannot take as it is (here a reversed view) is copied, counted, and
/// still multiplied correctly: the counter the allocation test reads does count.
#[test]
fn layouts_blas_cannot_take_are_copied_and_counted() {
    let _settings = exclusive();
    let a: Array2<f64> = random(7, 5, 1);
    let b: Array2<f64> = random(5, 3, 2);
    let reversed = a.slice(ndarray::s![..;-1, ..]);
    let mut c = Array2::zeros((7, 3));
    let before = layout_copies();
    gemm(1.0, reversed, b.view(), 0.0, c.view_mut());
    assert_eq!(layout_copies(), before + 1);
    let expected = matmul_naive(reversed.to_owned().view(), b.view());
    assert!(c.iter().zip(&expected).all(|(x, y)| (x - y).abs() < 1e-12));
}
