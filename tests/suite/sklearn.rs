//! `nabla::sklearn` (the engine of the Python `MLPClassifier`) against a plain-loop
//! transcription of scikit-learn's stochastic training, written here from the formulas
//! of its `_multilayer_perceptron.py` and `_stochastic_optimizers.py`. (The Python tests
//! compare with scikit-learn itself.)

use ndarray::{array, s, Array1, Array2, ArrayView2, Axis};

use nabla::reference::{activation_backward, activation_forward, linear_forward, matmul_naive};
use nabla::sklearn::{
    FitEnd, FitHooks, LearningRate, Output, Samples, Settings, SklearnMlp, SolverKind,
};
use nabla::ActivationKind;

/// `(coefs (in, out), intercepts)` per layer.
type Parameters = Vec<(Array2<f64>, Array1<f64>)>;

/// Records the calls; `order` reverses the previous order, so shuffling is visible.
#[derive(Default)]
struct Recorder {
    lines: Vec<String>,
    shuffles: usize,
}

impl FitHooks for Recorder {
    fn shuffle(&mut self, order: &mut [usize]) {
        order.reverse();
        self.shuffles += 1;
    }

    fn message(&mut self, line: &str) -> bool {
        self.lines.push(line.to_string());
        true
    }
}

fn settings(solver: SolverKind, momentum: f64, nesterov: bool) -> Settings {
    Settings {
        solver,
        alpha: 0.01,
        batch_size: 7,
        learning_rate: LearningRate::Constant,
        learning_rate_init: match (solver, momentum > 0.0) {
            (SolverKind::Adam, _) => 0.01,
            (SolverKind::Sgd, true) => 0.02,
            (SolverKind::Sgd, false) => 0.2,
        },
        power_t: 0.5,
        max_iter: 4,
        shuffle: false,
        tol: 1e-4,
        momentum,
        nesterovs_momentum: nesterov,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        n_iter_no_change: 10,
    }
}

/// 30 rows of 5 features, 3 classes (one-hot), deterministic.
fn data() -> (Array2<f64>, Array2<f64>) {
    let x = Array2::from_shape_fn((30, 5), |(i, j)| {
        (((i * 7 + j * 3) % 11) as f64 - 5.0) / 4.0
    });
    let y = Array2::from_shape_fn((30, 3), |(i, k)| f64::from((i * 5 % 3) == k));
    (x, y)
}

/// Weights `(in, out)` and biases for sizes 5-6-4-3.
fn start() -> Parameters {
    [5, 6, 4, 3]
        .windows(2)
        .enumerate()
        .map(|(l, pair)| {
            let w = Array2::from_shape_fn((pair[0], pair[1]), |(i, j)| {
                (((i * 13 + j * 7 + l * 5) % 17) as f64 - 8.0) / 20.0
            });
            let b = Array1::from_shape_fn(pair[1], |j| ((j + l) % 3) as f64 / 10.0 - 0.1);
            (w, b)
        })
        .collect()
}

/// A network from [`start`]'s weights with the given hidden activation, softmax output.
fn network(activation: ActivationKind, early_stopping: bool) -> SklearnMlp<f64> {
    let start = start();
    let views: Vec<_> = start.iter().map(|(w, b)| (w.view(), b.view())).collect();
    SklearnMlp::new(&views, activation, Output::Softmax, early_stopping).unwrap()
}

/// scikit-learn's `_fit_stochastic` without shuffling, softmax output, in plain loops:
/// returns the loss curve and the final `(coefs, intercepts)`.
fn reference_fit(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    mut params: Parameters,
    activation: ActivationKind,
    settings: &Settings,
) -> (Vec<f64>, Parameters) {
    let zeros = |p: &Parameters| {
        p.iter()
            .map(|(w, b)| {
                (
                    Array2::<f64>::zeros(w.raw_dim()),
                    Array1::<f64>::zeros(b.len()),
                )
            })
            .collect::<Vec<_>>()
    };
    let (mut first, mut second) = (zeros(&params), zeros(&params));
    let (alpha, lr, mu) = (
        settings.alpha,
        settings.learning_rate_init,
        settings.momentum,
    );
    let mut t = 0;
    let mut curve = Vec::new();
    for _ in 0..settings.max_iter {
        let mut accumulated = 0.0;
        let mut start = 0;
        while start < x.nrows() {
            let end = (start + settings.batch_size).min(x.nrows());
            let (xb, yb) = (x.slice(s![start..end, ..]), y.slice(s![start..end, ..]));
            let n = (end - start) as f64;
            let mut activations = vec![xb.to_owned()];
            for (l, (w, b)) in params.iter().enumerate() {
                let z = linear_forward(activations[l].view(), w.t(), b.view());
                let hidden = l + 1 < params.len();
                activations.push(if hidden {
                    activation_forward(activation, z.view())
                } else {
                    z
                });
            }
            let mut p = activations.pop().unwrap();
            for mut row in p.rows_mut() {
                let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                row.mapv_inplace(|v| (v - max).exp());
                let sum = row.sum();
                row.mapv_inplace(|v| v / sum);
            }
            let eps = f64::EPSILON;
            let mut loss = 0.0;
            for (&pv, &yv) in p.iter().zip(yb) {
                if yv != 0.0 {
                    loss -= yv * pv.clamp(eps, 1.0 - eps).ln();
                }
            }
            let squares: f64 = params
                .iter()
                .map(|(w, _)| w.iter().map(|v| v * v).sum::<f64>())
                .sum();
            loss = loss / n + 0.5 * alpha * squares / n;
            accumulated += loss * n;
            let mut delta = &p - &yb;
            let mut grads = Vec::new();
            for l in (0..params.len()).rev() {
                let gw =
                    (matmul_naive(activations[l].t(), delta.view()) + &(&params[l].0 * alpha)) / n;
                let gb = delta.sum_axis(Axis(0)) / n;
                if l > 0 {
                    let back = matmul_naive(delta.view(), params[l].0.t());
                    delta = activation_backward(activation, activations[l].view(), back.view());
                }
                grads.push((gw, gb));
            }
            grads.reverse();
            t += 1;
            let update = |value: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]| {
                for i in 0..g.len() {
                    match settings.solver {
                        SolverKind::Sgd => {
                            let velocity = mu * m[i] - lr * g[i];
                            m[i] = velocity;
                            value[i] += if settings.nesterovs_momentum {
                                mu * velocity - lr * g[i]
                            } else {
                                velocity
                            };
                        }
                        SolverKind::Adam => {
                            let (b1, b2) = (settings.beta_1, settings.beta_2);
                            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                            let rate = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
                            value[i] += -rate * m[i] / (v[i].sqrt() + settings.epsilon);
                        }
                    }
                }
            };
            for (l, (gw, gb)) in grads.into_iter().enumerate() {
                let (w, b) = &mut params[l];
                let (m, v) = (&mut first[l], &mut second[l]);
                update(
                    w.as_slice_mut().unwrap(),
                    gw.as_slice().unwrap(),
                    m.0.as_slice_mut().unwrap(),
                    v.0.as_slice_mut().unwrap(),
                );
                update(
                    b.as_slice_mut().unwrap(),
                    gb.as_slice().unwrap(),
                    m.1.as_slice_mut().unwrap(),
                    v.1.as_slice_mut().unwrap(),
                );
            }
            start = end;
        }
        curve.push(accumulated / x.nrows() as f64);
    }
    (curve, params)
}

fn assert_close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-12 * b.abs().max(1e-3),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn every_solver_equals_the_plain_loop_transcription_of_scikit_learn() {
    let (x, y) = data();
    let cases = [
        (SolverKind::Sgd, 0.0, false, ActivationKind::Relu),
        (SolverKind::Sgd, 0.9, false, ActivationKind::Tanh),
        (SolverKind::Sgd, 0.9, true, ActivationKind::Sigmoid),
        (SolverKind::Adam, 0.0, false, ActivationKind::Relu),
        (SolverKind::Adam, 0.0, false, ActivationKind::Identity),
    ];
    for (solver, momentum, nesterov, activation) in cases {
        let settings = settings(solver, momentum, nesterov);
        let mut mlp = network(activation, false);
        let mut hooks = Recorder::default();
        let train = Samples::new(x.view(), y.view());
        let end = mlp.fit(train, None, &settings, false, &mut hooks).unwrap();
        assert_eq!(end, FitEnd::MaxIterReached);
        let (curve, params) = reference_fit(x.view(), y.view(), start(), activation, &settings);
        let what = format!("{solver:?} momentum {momentum} nesterov {nesterov} {activation}");
        assert_eq!(mlp.progress.loss_curve.len(), curve.len(), "{what}");
        for (a, b) in mlp.progress.loss_curve.iter().zip(&curve) {
            assert_close(*a, *b, &what);
        }
        for ((w, b), (rw, rb)) in mlp.parameters().iter().zip(&params) {
            for (a, r) in w.iter().chain(b).zip(rw.iter().chain(rb)) {
                assert_close(*a, *r, &what);
            }
        }
        // The curve moved: the run trained.
        assert!(curve[3] < curve[0], "{what}: {curve:?}");
        assert_eq!(mlp.progress.t, 4 * 30);
        assert_eq!(
            hooks.lines[0],
            format!("Iteration 1, loss = {:.8}", curve[0])
        );
        assert_eq!(hooks.shuffles, 0);
    }
}

#[test]
fn the_tol_rule_stops_and_shuffling_asks_the_caller_each_epoch() {
    let (x, y) = data();
    let mut mlp = network(ActivationKind::Relu, false);
    let mut settings = settings(SolverKind::Sgd, 0.0, false);
    settings.tol = 10.0; // no epoch improves by 10
    settings.n_iter_no_change = 2;
    settings.max_iter = 50;
    settings.shuffle = true;
    let mut hooks = Recorder::default();
    let train = Samples::new(x.view(), y.view());
    let end = mlp.fit(train, None, &settings, false, &mut hooks).unwrap();
    // The first epoch improves on infinity; three more without improvement stop it.
    assert_eq!(end, FitEnd::Converged);
    assert_eq!(mlp.progress.n_iter, 4);
    assert_eq!(hooks.shuffles, 4);
    assert!(hooks
        .lines
        .last()
        .unwrap()
        .ends_with("for 2 consecutive epochs. Stopping."));
}

#[test]
fn early_stopping_keeps_the_best_validation_weights() {
    let (x, y) = data();
    let mut mlp = network(ActivationKind::Relu, true);
    let mut settings = settings(SolverKind::Adam, 0.0, false);
    settings.learning_rate_init = 0.2;
    settings.max_iter = 8;
    let (x_val, y_val) = (x.slice(s![..10, ..]), y.slice(s![..10, ..]));
    let mut hooks = Recorder::default();
    mlp.fit(
        Samples::new(x.view(), y.view()),
        Some(Samples::new(x_val, y_val)),
        &settings,
        false,
        &mut hooks,
    )
    .unwrap();
    let scores = mlp.progress.validation_scores.clone().unwrap();
    let best = mlp.progress.best_validation_score.unwrap();
    assert_eq!(scores.len(), 8);
    assert_eq!(
        best,
        scores.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    );
    // The weights are the best epoch's: they score the best score again.
    assert_eq!(mlp.score(Samples::new(x_val, y_val)).unwrap(), best);
    assert_eq!(mlp.progress.best_loss, None);
}

#[test]
fn logistic_outputs_predict_above_one_half() {
    let w = array![[2.0], [-1.0]];
    let b = array![0.0];
    let mlp = SklearnMlp::new(
        &[(w.view(), b.view())],
        ActivationKind::Relu,
        Output::Logistic,
        false,
    )
    .unwrap();
    let p = mlp
        .predict_proba(array![[1.0, 0.0], [0.0, 1.0]].view())
        .unwrap();
    assert!((p[[0, 0]] - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-15);
    assert!(p[[1, 0]] < 0.5);
    let (x, y) = (array![[1.0, 0.0], [0.0, 1.0]], array![[1.0], [1.0]]);
    assert_eq!(mlp.score(Samples::new(x.view(), y.view())).unwrap(), 0.5);
    // Weighted: the right row counts 3 times, the wrong one once.
    let weights = array![3.0, 1.0];
    let weighted = Samples {
        weights: Some(weights.view()),
        ..Samples::new(x.view(), y.view())
    };
    assert_eq!(mlp.score(weighted).unwrap(), 0.75);
    let wrong = mlp.predict_proba(array![[1.0, 0.0, 3.0]].view());
    assert!(wrong
        .unwrap_err()
        .to_string()
        .contains("expected 2 features"));
}

#[test]
fn integer_sample_weights_equal_repeated_rows_in_one_batch() {
    let (x, y) = data();
    let counts: Vec<usize> = (0..x.nrows()).map(|i| 1 + i % 3).collect();
    let weights = Array1::from_iter(counts.iter().map(|&c| c as f64));
    let repeated: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(i, &c)| std::iter::repeat_n(i, c))
        .collect();
    let (x_rep, y_rep) = (x.select(Axis(0), &repeated), y.select(Axis(0), &repeated));
    for solver in [SolverKind::Sgd, SolverKind::Adam] {
        let mut settings = settings(
            solver,
            if solver == SolverKind::Sgd { 0.9 } else { 0.0 },
            true,
        );
        settings.batch_size = repeated.len(); // one batch: both see the same sums
        let mut weighted = network(ActivationKind::Tanh, false);
        let mut plain = weighted.clone();
        let samples = Samples {
            weights: Some(weights.view()),
            ..Samples::new(x.view(), y.view())
        };
        weighted
            .fit(samples, None, &settings, false, &mut Recorder::default())
            .unwrap();
        plain
            .fit(
                Samples::new(x_rep.view(), y_rep.view()),
                None,
                &settings,
                false,
                &mut Recorder::default(),
            )
            .unwrap();
        // One batch per epoch: the weighted mean loss is the repeated rows' mean.
        for (a, r) in weighted
            .progress
            .loss_curve
            .iter()
            .zip(&plain.progress.loss_curve)
        {
            assert_close(*a, *r, &format!("{solver:?} weighted loss"));
        }
        for ((w, b), (pw, pb)) in weighted.parameters().iter().zip(plain.parameters().iter()) {
            for (a, r) in w.iter().chain(b).zip(pw.iter().chain(pb)) {
                assert_close(*a, *r, &format!("{solver:?} weighted"));
            }
        }
    }
}
