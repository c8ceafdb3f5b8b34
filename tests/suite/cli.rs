//! The `nabla` binary, run on small slices of the bundled data.

use std::path::Path;

use assert_cmd::Command;

fn nabla() -> Command {
    let mut command = Command::cargo_bin("nabla").unwrap();
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("train")
        .args(["--threads", "2"]);
    command
}

fn nabla_subcommand(name: &str) -> Command {
    let mut command = Command::cargo_bin("nabla").unwrap();
    command.current_dir(env!("CARGO_MANIFEST_DIR")).arg(name);
    command
}

/// A small, fast run: 500 training and 200 test rows of the subset, relu.
fn small_run() -> Command {
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

fn column(path: &Path, name: &str) -> Vec<String> {
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

fn stdout_of(command: &mut Command) -> String {
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
fn write_test_rows(path: &Path, rows: usize) -> Vec<usize> {
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
    let mut loaded = nabla::checkpoint::load::<f32>(&model).unwrap();
    let features = nabla::data::load_csv::<f32>(&input, 10).unwrap().0;
    let expected = nabla::train::predict(&mut loaded, &nabla::Features::Dense(features));
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
        let output = nabla().args(flags).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{flags:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
    }
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
            "7e34",
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
    // The SVG parses as XML; each panel (loss, accuracy) has one legend entry per run and
    // split, and each run is drawn in a colour of its own.
    let text = std::fs::read_to_string(&svg).unwrap();
    let document = roxmltree::Document::parse(&text).unwrap();
    let legend: Vec<String> = document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text())
        .map(|text| text.trim().to_string())
        .filter(|text| text.ends_with(" train") || text.ends_with(" test"))
        .collect();
    for entry in ["a train", "a test", "b train", "b test"] {
        assert_eq!(
            legend.iter().filter(|t| *t == entry).count(),
            2,
            "'{entry}' in {legend:?}"
        );
    }
    assert_eq!(legend.len(), 8, "{legend:?}");
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
