//! The `nabla` binary, run on small slices of the bundled data.

use std::path::Path;

use assert_cmd::Command;

pub(super) fn nabla() -> Command {
    let mut command = Command::cargo_bin("nabla").unwrap();
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("train")
        .args(["--threads", "2"]);
    command
}

pub(super) fn nabla_subcommand(name: &str) -> Command {
    let mut command = Command::cargo_bin("nabla").unwrap();
    command.current_dir(env!("CARGO_MANIFEST_DIR")).arg(name);
    command
}

/// A small, fast run: 500 training and 200 test rows of the subset, relu.
pub(super) fn small_run() -> Command {
    let mut command = nabla();
    command.args([
        "--train-rows",
        "500",
        "--test-rows",
        "200",
        "--activation",
        "relu",
        "--hidden",
        "32",
    ]);
    command
}

fn read_log(path: &Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader.records().map(Result::unwrap).collect()
}

pub(super) fn column(path: &Path, name: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let index = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == name)
        .unwrap();
    reader
        .records()
        .map(|r| r.unwrap()[index].to_string())
        .collect()
}

pub(super) fn stdout_of(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn log_has_one_parsable_row_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.csv");
    let stdout = stdout_of(small_run().args(["--epochs", "3", "--log"]).arg(&log));
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("epoch"))
            .count(),
        3,
        "{stdout}"
    );
    let rows = read_log(&log);
    assert_eq!(rows.len(), 3);
    assert_eq!(column(&log, "epoch"), ["1", "2", "3"]);
    for name in [
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "seconds",
    ] {
        for value in column(&log, name) {
            let number: f64 = value.parse().unwrap_or_else(|_| panic!("{name} '{value}'"));
            assert!(number.is_finite() && number >= 0.0);
        }
    }
    assert_eq!(column(&log, "activation"), ["relu"; 3]);
    assert_eq!(column(&log, "lr"), ["0.01"; 3]);
}

/// The first `rows` test rows of the subset as a CSV file with their labels.
pub(super) fn write_test_rows(path: &Path, rows: usize) -> Vec<usize> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-subset");
    let data = nabla::data::mnist_subset::<f32>(&dir)
        .unwrap()
        .head(1, rows);
    let x = data.test_x.to_dense();
    let text: String = x
        .rows()
        .into_iter()
        .zip(&data.test_y)
        .map(|(row, label)| {
            let values: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            format!("{},{label}\n", values.join(","))
        })
        .collect();
    std::fs::write(path, text).unwrap();
    data.test_y.to_vec()
}

#[test]
fn eval_and_predict_agree_with_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let (log, model) = (dir.path().join("run.csv"), dir.path().join("model.npz"));
    small_run()
        .args(["--epochs", "2", "--log"])
        .arg(&log)
        .arg("--save")
        .arg(&model)
        .assert()
        .success();
    assert!(model.is_file() && dir.path().join("model.json").is_file());
    let eval = stdout_of(nabla_subcommand("eval").arg("--model").arg(&model).args([
        "--train-rows",
        "500",
        "--test-rows",
        "200",
    ]));
    let field = |set: &str, index: usize| {
        let line = eval.lines().find(|l| l.starts_with(set)).unwrap();
        line.split_whitespace().nth(index).unwrap().to_string()
    };
    assert_eq!(field("train", 4), column(&log, "train_acc")[1], "{eval}");
    assert_eq!(field("test", 4), column(&log, "test_acc")[1], "{eval}");
    // The confusion matrix: each row sums to that class's count among the 200 test rows,
    // and its trace is the number of correct predictions eval reports.
    let labels = write_test_rows(&dir.path().join("unused.csv"), 200);
    let matrix: Vec<Vec<usize>> = eval
        .lines()
        .skip_while(|l| !l.starts_with("confusion matrix"))
        .skip(2)
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|c| c.parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(matrix.len(), 10, "{eval}");
    for (class, row) in matrix.iter().enumerate() {
        let count = labels.iter().filter(|&&l| l == class).count();
        assert_eq!(row.iter().sum::<usize>(), count, "class {class}: {eval}");
    }
    let trace: usize = (0..10).map(|c| matrix[c][c]).sum();
    let correct = field("test", 5);
    assert_eq!(format!("({trace}/200"), correct, "{eval}");

    // predict, on rows with a trailing label column, gives the library's predictions.
    let input = dir.path().join("rows.csv");
    write_test_rows(&input, 37);
    let loaded = nabla::checkpoint::load::<f32>(&model).unwrap();
    let features = nabla::data::load_csv::<f32>(&input, 10).unwrap().0;
    let expected = nabla::train::predict(&loaded, &nabla::Features::Dense(features));
    for dtype in ["f32", "f64"] {
        let predictions = stdout_of(
            nabla_subcommand("predict")
                .arg("--model")
                .arg(&model)
                .arg("--input")
                .arg(&input)
                .args(["--dtype", dtype]),
        );
        let labels: Vec<usize> = predictions.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(labels, expected.to_vec(), "predict --dtype {dtype}");
    }
    // eval --dtype f64 of the f32 model reports the same accuracy (to the printed digits).
    let eval64 = stdout_of(nabla_subcommand("eval").arg("--model").arg(&model).args([
        "--train-rows",
        "500",
        "--test-rows",
        "200",
        "--dtype",
        "f64",
    ]));
    let accuracy64 = eval64
        .lines()
        .find(|l| l.starts_with("test"))
        .unwrap()
        .split_whitespace()
        .nth(4)
        .unwrap()
        .to_string();
    assert_eq!(accuracy64, field("test", 4));
}

#[test]
fn init_from_continues_exactly_where_the_save_left_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    small_run()
        .args(["--epochs", "2", "--save"])
        .arg(path("two.npz"))
        .assert()
        .success();
    small_run()
        .args(["--epochs", "2", "--init-from"])
        .arg(path("two.npz"))
        .arg("--log")
        .arg(path("resumed.csv"))
        .assert()
        .success();
    small_run()
        .args(["--epochs", "4", "--log"])
        .arg(path("four.csv"))
        .assert()
        .success();
    for name in ["train_loss", "train_acc", "test_loss", "test_acc"] {
        let resumed = column(&path("resumed.csv"), name);
        let straight = column(&path("four.csv"), name);
        assert_eq!(resumed, straight[2..], "{name}");
    }
}

/// Runs `nabla ARGS` and checks the refusal: exit status 2, and one line on stderr,
/// `nabla: error: ...`, that contains `expected`.
#[track_caller]
pub(super) fn assert_refused(args: &[&str], expected: &str) {
    let output = Command::cargo_bin("nabla")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.starts_with("nabla: error: ") && stderr.lines().count() == 1,
        "{args:?}: not one prefixed line: {stderr}"
    );
    assert!(
        stderr.contains(expected),
        "{args:?}: '{expected}' not in {stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let cases: [(&[&str], &str); 11] = [
        (&["--lr", "0"], "--lr"),
        (&["--lr", "-0.5"], "invalid --lr -0.5"),
        (&["--weight-decay", "-1"], "invalid --weight-decay -1"),
        (&["--lr", "nan"], "--lr"),
        (&["--batch-size", "0"], "--batch-size"),
        (&["--epochs", "0"], "--epochs"),
        (&["--hidden", "0"], "--hidden"),
        (&["--activation", "softplus"], "softplus"),
        (&["--momentum", "1.5"], "--momentum"),
        (&["--dataset", "/no/such/dir"], "/no/such/dir"),
        (&["--save", "/no/such/dir/m.npz"], "--save"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["train", "--threads", "2"];
        args.extend(flags);
        assert_refused(&args, expected);
    }
}

/// Every option `nabla COMMAND --help` lists, given a value it cannot take, is refused
/// in one prefixed line naming the flag or the value (clap's refusals included), before
/// any work; so is an unknown flag and a missing argument.
#[test]
fn every_flag_with_a_bad_value_is_one_line() {
    let bad_path = "Cargo.toml/no/x.csv"; // under a file: nothing can be created there
    for command in [
        "train",
        "eval",
        "predict",
        "plot",
        "summarize",
        "make-subset",
    ] {
        let help = stdout_of(nabla_subcommand(command).arg("--help"));
        let options: Vec<(String, String)> = help
            .lines()
            .map(str::trim)
            .filter(|line| {
                line.starts_with("--") || line.starts_with("-o, --") || line.starts_with("-q, --")
            })
            .filter_map(|line| {
                let flag = line
                    .split_whitespace()
                    .find(|w| w.starts_with("--"))?
                    .to_string();
                let value = line
                    .split_whitespace()
                    .find(|w| w.starts_with('<'))?
                    .to_string();
                Some((flag, value))
            })
            .collect();
        assert!(
            !options.is_empty() || command == "plot",
            "{command}: no options in {help}"
        );
        for (flag, value_name) in options {
            let takes_path = ["FILE", "CSV", "DIR", "OUT", "MNIST"]
                .iter()
                .any(|k| value_name.to_uppercase().contains(k));
            let bad = if takes_path { bad_path } else { "x" };
            let mut args = vec![command, flag.as_str(), bad];
            // Complete what each command needs besides the flag under test.
            let model = "/no/such/dir/m.npz";
            match command {
                "eval" if flag != "--model" => args.extend(["--model", model]),
                "predict" if flag != "--model" => args.extend(["--model", model]),
                _ => {}
            }
            if command == "predict" && flag != "--input" {
                args.extend(["--input", bad_path]);
            }
            if (command == "plot" && flag != "--model") || command == "summarize" {
                args.push("/no/such/dir/log.csv");
            }
            if flag == "--train-file" {
                args.extend(["--test-file", bad_path]);
            }
            if flag == "--test-file" {
                args.extend(["--train-file", bad_path]);
            }
            if command == "train" {
                args.extend(["--epochs", "1"]);
            }
            let named = if takes_path { bad } else { flag.as_str() };
            // A path is refused naming the path (the flag's own check, or the file that
            // cannot be read); a value, naming the flag.
            let output = Command::cargo_bin("nabla")
                .unwrap()
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(&args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.starts_with("nabla: error: ") && stderr.lines().count() == 1,
                "{args:?}: {stderr}"
            );
            assert!(
                stderr.contains(named)
                    || stderr.contains("Cargo.toml/no")
                    || stderr.contains("/no/such/dir"),
                "{args:?}: {stderr}"
            );
        }
        assert_refused(&[command, "--bogus"], "--bogus");
    }
    assert_refused(&["plot"], "LOG.csv");
    assert_refused(&["eval"], "--model");
    assert_refused(&["--dtype", "f16"], "f16");
}

#[test]
fn malformed_csv_is_named_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    std::fs::write(&train, "0.1,0.2,1\n0.3,x,0\n").unwrap();
    std::fs::write(&test, "0.1,0.2,1\n").unwrap();
    let output = nabla()
        .arg("--train-file")
        .arg(&train)
        .arg("--test-file")
        .arg(&test)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("train.csv:2:2") && stderr.contains("'x' is not a number"),
        "{stderr}"
    );
}

#[test]
fn a_short_relu_run_on_the_subset_learns() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("relu.csv");
    // At the default lr 0.01 five epochs reach about 0.70 (as NumPy does with the same
    // algorithm); lr 0.1 is the short run that shows learning.
    nabla()
        .args([
            "--activation",
            "relu",
            "--epochs",
            "5",
            "--lr",
            "0.1",
            "--quiet",
            "--log",
        ])
        .arg(&log)
        .assert()
        .success();
    let accuracy: f64 = column(&log, "test_acc")[4].parse().unwrap();
    assert!(
        accuracy > 0.8,
        "test accuracy after 5 relu epochs: {accuracy}"
    );
}

#[test]
fn divergence_is_a_clear_error_and_the_log_keeps_the_finished_epochs() {
    // The same late divergence as the library test (training::late_divergence).
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("diverged.csv");
    let output = nabla()
        .args([
            "--train-rows",
            "500",
            "--test-rows",
            "200",
            "--hidden",
            "32",
            "--activation",
            "sigmoid",
        ])
        .args([
            "--lr",
            "1.2e35",
            "--momentum",
            "0.99",
            "--epochs",
            "30",
            "--log",
        ])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let epoch: usize = stderr
        .split("diverged in epoch ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(epoch >= 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let logged = column(&log, "epoch");
    let expected: Vec<String> = (1..epoch).map(|e| e.to_string()).collect();
    assert_eq!(logged, expected, "the log keeps every finished epoch");
    let text = std::fs::read_to_string(&log).unwrap().to_lowercase();
    assert!(!text.contains("nan") && !text.contains("inf"), "{text}");
}

#[test]
fn plot_and_summarize_read_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    small_run()
        .args(["--epochs", "3", "--quiet", "--log"])
        .arg(&a)
        .assert()
        .success();
    small_run()
        .args([
            "--epochs", "2", "--quiet", "--dtype", "f64", "--lr", "0.05", "--log",
        ])
        .arg(&b)
        .assert()
        .success();
    let svg = dir.path().join("curves.svg");
    nabla_subcommand("plot")
        .arg(&a)
        .arg(&b)
        .arg("-o")
        .arg(&svg)
        .assert()
        .success();
    // The SVG parses as XML; the legend below the panels has one entry per run and one
    // key for the line styles, and each run is drawn in a colour of its own.
    let text = std::fs::read_to_string(&svg).unwrap();
    let document = roxmltree::Document::parse(&text).unwrap();
    let texts: Vec<String> = document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text())
        .map(|text| text.trim().to_string())
        .collect();
    for entry in ["a", "b", "solid: train, dashed: test"] {
        assert_eq!(
            texts.iter().filter(|t| *t == entry).count(),
            1,
            "'{entry}' in {texts:?}"
        );
    }
    let colours: std::collections::BTreeSet<&str> = document
        .descendants()
        .filter(|node| node.has_tag_name("polyline"))
        .filter_map(|node| node.attribute("stroke"))
        .filter(|&stroke| stroke != "#000000")
        .collect();
    assert_eq!(colours.len(), 2, "one colour per run: {colours:?}");

    let (markdown, table) = (
        dir.path().join("results.md"),
        dir.path().join("results.csv"),
    );
    nabla_subcommand("summarize")
        .arg(&a)
        .arg(&b)
        .arg("--markdown")
        .arg(&markdown)
        .arg("--csv")
        .arg(&table)
        .assert()
        .success();
    let markdown = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        markdown.contains("| a | 32 | relu | 0.01 |")
            && markdown.contains("| b | 32 | relu | 0.05 |"),
        "{markdown}"
    );
    assert_eq!(column(&table, "dtype"), ["f32", "f64"]);
    // The summary holds each log's last epoch and the sum of its seconds. Log a's
    // seconds are rewritten to known values (1.5 + 2.25 + 3.125), as real ones round to
    // 0.00 on a fast machine.
    let mut reader = csv::Reader::from_path(&a).unwrap();
    let header = reader.headers().unwrap().clone();
    let seconds_index = header.iter().position(|h| h == "seconds").unwrap();
    let mut writer = csv::Writer::from_path(&a).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    writer.write_record(&header).unwrap();
    for (row, seconds) in rows.iter().zip(["1.5", "2.25", "3.125"]) {
        let fields: Vec<&str> = row
            .iter()
            .enumerate()
            .map(|(i, field)| if i == seconds_index { seconds } else { field })
            .collect();
        writer.write_record(fields).unwrap();
    }
    writer.flush().unwrap();
    nabla_subcommand("summarize")
        .arg(&a)
        .arg(&b)
        .arg("--csv")
        .arg(&table)
        .assert()
        .success();
    assert_eq!(
        column(&table, "seconds")[0],
        "6.88",
        "1.5 + 2.25 + 3.125 = 6.875"
    );
    for (row, log) in [&a, &b].into_iter().enumerate() {
        for name in ["train_loss", "train_acc", "test_loss", "test_acc", "epochs"] {
            assert_eq!(
                column(&table, name)[row],
                *column(log, name).last().unwrap(),
                "{name}"
            );
        }
    }
}

#[test]
fn an_interrupted_run_keeps_the_rows_it_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("interrupted.csv");
    let binary = assert_cmd::cargo::cargo_bin("nabla");
    let mut child = std::process::Command::new(binary)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "train",
            "--train-rows",
            "300",
            "--test-rows",
            "100",
            "--hidden",
            "16",
            "--epochs",
            "100000",
            "--quiet",
            "--log",
        ])
        .arg(&log)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&log).map_or(0, |text| text.lines().count()) < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "no epochs logged within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Every row that reached the file is whole: flushed epoch by epoch, never half a line.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'), "the log ends mid-row");
    let epochs = column(&log, "epoch");
    assert!(epochs.len() >= 3);
    let expected: Vec<String> = (1..=epochs.len()).map(|e| e.to_string()).collect();
    assert_eq!(epochs, expected);
}

/// The model file `nabla ARGS --save` writes.
fn saved_model(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let path = dir.join(format!("{name}.safetensors"));
    let mut command = Command::cargo_bin("nabla").unwrap();
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "train",
            "--train-rows",
            "600",
            "--test-rows",
            "100",
            "--epochs",
            "2",
            "--quiet",
        ])
        .args(args)
        .arg("--save")
        .arg(&path);
    stdout_of(&mut command);
    std::fs::read(path).unwrap()
}

#[test]
fn runs_are_bit_identical_across_processes_and_close_across_thread_counts() {
    // Two processes with the same settings write byte-identical models, and one thread is
    // one thread whatever the GEMM setting. nabla's own threads (split, sliced) give the
    // one-thread result to within rounding (bit for bit with some OpenBLAS kernels; see
    // tests/threads.rs); OpenBLAS's own threading changes the last bits too.
    let dir = tempfile::tempdir().unwrap();
    let first = saved_model(dir.path(), "first", &["--threads", "2"]);
    let second = saved_model(dir.path(), "second", &["--threads", "2"]);
    assert!(first == second, "two runs with the same settings differ");
    let one = saved_model(dir.path(), "one", &["--threads", "1"]);
    for gemm in ["split", "sliced", "openblas"] {
        let single = saved_model(
            dir.path(),
            &format!("{gemm}1"),
            &["--gemm", gemm, "--threads", "1"],
        );
        assert!(
            single == one,
            "--gemm {gemm} --threads 1 differs from one thread"
        );
        saved_model(
            dir.path(),
            &format!("{gemm}2"),
            &["--gemm", gemm, "--threads", "2"],
        );
        let path = |name: &str| dir.path().join(format!("{name}.safetensors"));
        let one = nabla::checkpoint::load::<f32>(&path("one")).unwrap();
        let two = nabla::checkpoint::load::<f32>(&path(&format!("{gemm}2"))).unwrap();
        let (mut largest, mut difference) = (0.0f32, 0.0f32);
        for (a, b) in one.linear_layers().zip(two.linear_layers()) {
            for (x, y) in a
                .weights()
                .iter()
                .chain(a.bias())
                .zip(b.weights().iter().chain(b.bias()))
            {
                largest = largest.max(x.abs());
                difference = difference.max((x - y).abs());
            }
        }
        assert!(
            difference <= 1e-6 * largest,
            "--gemm {gemm} --threads 2: {} relative to one thread",
            difference / largest
        );
    }
}

#[test]
fn bare_flags_train_with_the_default_thread_count() {
    // No subcommand and no --threads: trains, with as many threads as cores.
    let output = stdout_of(
        Command::cargo_bin("nabla")
            .unwrap()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--train-rows", "200", "--test-rows", "50", "--epochs", "2"]),
    );
    // The count the limits give (cores, affinity, quota, environment), and why.
    let budget = nabla::threads::ThreadBudget::decide(&nabla::threads::Limits::read(), None);
    let header = output.lines().next().unwrap();
    // auto: the per-core step for plain gradient descent at batch 50 on several cores.
    let threading = if budget.threads > 1 {
        "sliced"
    } else {
        "openblas"
    };
    let plural = if budget.threads == 1 { "" } else { "s" };
    assert!(
        header.ends_with(&format!(
            ", {} thread{plural} ({}; gemm {threading}, auto)",
            budget.threads, budget.source
        )),
        "{header}"
    );
    assert!(
        header.contains("784-256-10 sigmoid f32, lr 0.01, batch 50, 2 epochs, seed 10701"),
        "{header}"
    );
    assert_eq!(
        output.lines().filter(|l| l.starts_with("epoch")).count(),
        2,
        "{output}"
    );
    assert!(
        output.lines().last().unwrap().starts_with("final: "),
        "{output}"
    );
}

#[test]
fn full_mnist_with_every_training_extension() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("extended.csv");
    let output = stdout_of(
        nabla()
            .args([
                "--dataset",
                "mnist",
                "--train-rows",
                "3000",
                "--test-rows",
                "500",
            ])
            .args([
                "--hidden",
                "384,256",
                "--activation",
                "relu",
                "--lr",
                "0.05",
                "--epochs",
                "2",
            ])
            .args([
                "--shuffle",
                "--momentum",
                "0.5",
                "--weight-decay",
                "1e-4",
                "--init",
                "he",
                "--seed",
                "7",
            ])
            .arg("--log")
            .arg(&log),
    );
    assert!(output.starts_with("nabla: mnist (3000 train / 500 test rows), 784-384-256-10 relu f32, lr 0.05, batch 50, 2 epochs, seed 7"), "{output}");
    assert_eq!(column(&log, "hidden"), ["384,256"; 2]);
    assert_eq!(column(&log, "init"), ["he"; 2]);
    assert_eq!(
        column(&log, "extras")[0],
        "momentum=0.5 nesterov=false weight_decay=0.0001 shuffle=true threads=2 gemm=auto warmup=0 patience=none val=none"
    );
    let accuracy: f64 = column(&log, "test_acc")[1].parse().unwrap();
    assert!(
        accuracy > 0.8,
        "test accuracy {accuracy} after 2 epochs on 3,000 MNIST rows"
    );
}

#[test]
fn explicit_csv_files_train() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    let labels = write_test_rows(&train, 300);
    write_test_rows(&test, 60);
    let log = dir.path().join("csv.csv");
    stdout_of(
        nabla()
            .arg("--train-file")
            .arg(&train)
            .arg("--test-file")
            .arg(&test)
            .args([
                "--epochs",
                "3",
                "--activation",
                "relu",
                "--lr",
                "0.1",
                "--quiet",
                "--log",
            ])
            .arg(&log),
    );
    assert_eq!(column(&log, "epoch"), ["1", "2", "3"]);
    assert_eq!(column(&log, "dataset")[0], train.display().to_string());
    let accuracy: f64 = column(&log, "train_acc")[2].parse().unwrap();
    let majority = (0..10)
        .map(|c| labels.iter().filter(|&&l| l == c).count())
        .max()
        .unwrap() as f64
        / 300.0;
    assert!(
        accuracy > majority,
        "learned beyond the majority class: {accuracy}"
    );
}

#[test]
fn make_subset_writes_the_head_of_the_bundled_subset() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("subset");
    let stdout = stdout_of(
        nabla_subcommand("make-subset")
            .arg("--out")
            .arg(&out)
            .args(["--train-rows", "120", "--test-rows", "30"]),
    );
    assert!(
        stdout.contains("train.csv.gz") && stdout.contains("test.csv.gz"),
        "{stdout}"
    );
    let lines = |path: &Path| {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
            &mut text,
        )
        .unwrap();
        text.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-subset");
    for (name, rows) in [("train.csv.gz", 120), ("test.csv.gz", 30)] {
        let written = lines(&out.join(name));
        assert_eq!(written.len(), rows);
        assert_eq!(written[..], lines(&bundled.join(name))[..rows], "{name}");
    }
}
