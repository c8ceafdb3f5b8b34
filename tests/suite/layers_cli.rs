//! `--layers` from the command line (issue 22): errors that point at the token, runs of
//! convolutions, normalisation and dropout that resume bit-exactly, and model files
//! with PyTorch's `nn.Sequential` names that `eval` reads back.

use std::path::Path;

use super::cli::{nabla, stdout_of};

/// A small CNN with every stateful layer: batch statistics, running statistics, dropout.
const CNN: &str = "Conv2d(4, 3, padding=1), BatchNorm2d, ReLU, MaxPool2d(2), Flatten, \
                   Dropout(0.3), Linear(16), BatchNorm1d, GELU, Linear(10)";

fn cnn_run(out: &Path, epochs: &str) -> std::process::Output {
    nabla()
        .args([
            "--dataset",
            "mnist",
            "--train-rows",
            "300",
            "--test-rows",
            "100",
        ])
        .args([
            "--layers",
            CNN,
            "--batch-size",
            "32",
            "--shuffle",
            "--val-split",
            "0.2",
        ])
        .args([
            "--optimizer",
            "adam",
            "--lr",
            "0.003",
            "--quiet",
            "--epochs",
            epochs,
        ])
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn a_cnn_with_dropout_and_batch_norm_resumes_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, stopped) = (dir.path().join("straight"), dir.path().join("stopped"));
    let output = cnn_run(&straight, "3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(cnn_run(&stopped, "1").status.success());
    let folder = stopped.display().to_string();
    let output = stdout_of(nabla().args(["--resume", &folder, "--epochs", "3"]));
    assert!(output.contains("resumed after epoch 1"), "{output}");
    let bytes = |run: &Path| std::fs::read(run.join("model.safetensors")).unwrap();
    assert!(
        bytes(&straight) == bytes(&stopped),
        "the resumed model (dropout masks, running statistics) differs from the straight run's"
    );
    let log = |run: &Path| std::fs::read_to_string(run.join("log.csv")).unwrap();
    let losses = |text: String| -> Vec<String> {
        text.lines()
            .skip(1)
            .map(|line| line.split(',').take(4).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(losses(log(&straight)), losses(log(&stopped)));
    // Another spec is another architecture: refused.
    let output = nabla()
        .args([
            "--resume",
            &folder,
            "--epochs",
            "4",
            "--layers",
            "Flatten, Linear(10)",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--layers"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The model file: PyTorch's names and shapes, BatchNorm's buffers included.
    let model = nabla::checkpoint::load::<f32>(&straight.join("model.safetensors")).unwrap();
    let names: Vec<(String, Vec<usize>)> = model
        .layers()
        .iter()
        .enumerate()
        .flat_map(|(position, layer)| {
            layer
                .state_entries()
                .into_iter()
                .map(move |(name, shape)| (format!("{position}.{name}"), shape))
        })
        .collect();
    let expected: Vec<(String, Vec<usize>)> = [
        ("0.weight", vec![4, 1, 3, 3]),
        ("0.bias", vec![4]),
        ("1.weight", vec![4]),
        ("1.bias", vec![4]),
        ("1.running_mean", vec![4]),
        ("1.running_var", vec![4]),
        ("1.num_batches_tracked", vec![]),
        ("6.weight", vec![16, 784]),
        ("6.bias", vec![16]),
        ("7.weight", vec![16]),
        ("7.bias", vec![16]),
        ("7.running_mean", vec![16]),
        ("7.running_var", vec![16]),
        ("7.num_batches_tracked", vec![]),
        ("9.weight", vec![10, 16]),
        ("9.bias", vec![10]),
    ]
    .into_iter()
    .map(|(name, shape)| (name.to_string(), shape))
    .collect();
    assert_eq!(names, expected);
    // 240 training rows in batches of 32: 8 batches an epoch.
    match model.layers()[1].state_values("num_batches_tracked") {
        Some(nabla::layers::StateValues::Count(count)) => assert_eq!(count, 24),
        other => panic!("{other:?}"),
    }
    // eval reads it back (evaluation mode: running statistics, no dropout) and agrees
    // with the run's own final test accuracy.
    let summary = std::fs::read_to_string(straight.join("log.csv")).unwrap();
    let last = summary.lines().last().unwrap().to_string();
    let evaluated = stdout_of(
        assert_cmd::Command::cargo_bin("nabla")
            .unwrap()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "eval",
                "--dataset",
                "mnist",
                "--test-rows",
                "100",
                "--model",
            ])
            .arg(straight.join("model.safetensors")),
    );
    let header = summary
        .lines()
        .next()
        .unwrap()
        .split(',')
        .collect::<Vec<_>>();
    let column = header.iter().position(|name| *name == "test_acc").unwrap();
    let accuracy: f64 = last.split(',').nth(column).unwrap().parse().unwrap();
    assert!(
        evaluated.contains(&format!("{:.4}", accuracy)),
        "eval says {evaluated}, the run ended at test accuracy {accuracy}"
    );
}

#[test]
fn a_bad_spec_is_one_error_line_pointing_at_the_token() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--layers", "Conv2d(8, 3), Relu, Flatten, Linear(10)"],
            "`Relu`",
        ),
        (
            &["--layers", "Linear(64), ReLU, Linear(7)"],
            "the network gives 7 outputs, but the data has 10 classes",
        ),
        (
            &["--layers", "Conv2d(8, 3), Linear(10)"],
            "add Flatten before it",
        ),
        (
            &["--layers", "Conv2d(8, 30), Flatten, Linear(10)"],
            "Conv2d(8, 30)",
        ),
        (&["--layers", "Linear(10)", "--hidden", "64"], "--hidden"),
        (
            &["--layers", "Linear(64, bias=False), ReLU, Linear(10)"],
            "bias=False",
        ),
    ];
    for (flags, expected) in cases {
        let output = nabla()
            .args(["--epochs", "1"])
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?} was accepted");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{flags:?}: {stderr}");
        assert!(
            lines[0].starts_with("nabla: error: "),
            "{flags:?}: {stderr}"
        );
        assert!(
            lines[0].contains(expected),
            "{flags:?}: {stderr} lacks {expected}"
        );
    }
}

#[test]
fn batch_norm_refuses_a_batch_of_one_row_before_training() {
    let output = nabla()
        .args([
            "--train-rows",
            "101",
            "--test-rows",
            "10",
            "--batch-size",
            "50",
            "--epochs",
            "1",
        ])
        .args(["--layers", "Linear(16), BatchNorm1d, ReLU, Linear(10)"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("batch normalisation at layer 1") && stderr.contains("--batch-size"),
        "{stderr}"
    );
}

#[test]
fn a_resume_compares_layers_not_their_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let spec = "Linear(16), BatchNorm1d, ReLU, Linear(10)";
    let first = nabla()
        .args([
            "--train-rows",
            "200",
            "--test-rows",
            "50",
            "--epochs",
            "1",
            "--quiet",
        ])
        .args(["--layers", spec])
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // The same layers, spaced and with defaults written out: the same run.
    let same = "Linear( 16 ),BatchNorm1d(eps=1e-5, momentum=0.1), ReLU(inplace=True), Linear(10)";
    let folder = run.display().to_string();
    let output = stdout_of(nabla().args(["--resume", &folder, "--epochs", "2", "--layers", same]));
    assert!(output.contains("resumed after epoch 1"), "{output}");
    let other = nabla()
        .args([
            "--resume",
            &folder,
            "--epochs",
            "3",
            "--layers",
            "Linear(16), ReLU, Linear(10)",
        ])
        .output()
        .unwrap();
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("--layers"));
}
