// A run's result at every edge: finished runs, resume hints, other folders, torn and
// edited logs and checkpoints, kills, Ctrl-C, outputs that are inputs, files that are
// devices, and sizes from flags. Each test is a case a hostile user found.
//
// `NABLA_TEST_BIN` runs these tests against another build of the binary (how they were
// seen to fail before the fixes).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::cli::column;

fn bin() -> PathBuf {
    std::env::var_os("NABLA_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| assert_cmd::cargo::cargo_bin("nabla"))
}

/// `nabla train` in `dir` on 300 subset rows, one thread, quiet.
fn train(dir: &Path) -> Command {
    let mut command = Command::new(bin());
    command.current_dir(dir).args([
        "train",
        "--dataset",
        &bundled("mnist-subset"),
        "--train-rows",
        "300",
        "--test-rows",
        "100",
        "--hidden",
        "16",
        "--threads",
        "1",
        "--quiet",
    ]);
    command
}

/// The bytes of the file at `path`.
fn bytes(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// 40 rows of two features and a 0/1 label, in the assignment's CSV format.
fn table_rows() -> String {
    (0..40)
        .map(|row| format!("{},{},{}\n", row % 7, (row * 3) % 5, row % 2))
        .collect()
}

/// `nabla train` in `dir` on the CSV files `train` and `test` (two classes, 4 hidden).
fn csv_run(dir: &Path, train: &str, test: &str) -> Command {
    let mut command = Command::new(bin());
    command.current_dir(dir).args([
        "train",
        "--train-file",
        train,
        "--test-file",
        test,
        "--classes",
        "2",
        "--hidden",
        "4",
    ]);
    command
}

/// A large model in f64 with Adam on MNIST rows (`rows`: the row flags), one thread: its
/// checkpoint and model take a while to write.
fn large_run(dir: &Path, rows: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command
        .current_dir(dir)
        .arg("train")
        .arg("--dataset")
        .arg(bundled("mnist"))
        .args(rows);
    command.args([
        "--hidden",
        "2048,2048",
        "--dtype",
        "f64",
        "--optimizer",
        "adam",
        "--threads",
        "1",
    ]);
    command
}

/// `nabla SUBCOMMAND` in `dir`.
fn nabla(dir: &Path, subcommand: &str) -> Command {
    let mut command = Command::new(bin());
    command.current_dir(dir).arg(subcommand);
    command
}

fn bundled(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
        .display()
        .to_string()
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

/// Runs `command`, killing it (and failing) if it has not ended within `limit`.
fn run_within(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("{command:?} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn succeeds(command: &mut Command) -> Output {
    let output = run(command);
    assert!(
        output.status.success(),
        "{:?}: {}",
        command,
        stderr(&output)
    );
    output
}

fn refused(command: &mut Command, expected: &str) -> String {
    let output = run_within(command, Duration::from_secs(60));
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{command:?}: {message}");
    assert!(message.contains(expected), "{command:?}: {message}");
    message
}

/// Every file in `dir` (not starting with '.') with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().is_file())
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                bytes(entry.path()),
            )
        })
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    files.sort();
    files
}

fn epochs(log: &Path) -> Vec<String> {
    column(log, "epoch")
}

#[test]
fn a_finished_run_stays_finished_and_more_epochs_continue_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(train(d).args(["--epochs", "2", "--out", "S"]));
    let before = snapshot(&d.join("S"));
    for _ in 0..2 {
        let output = succeeds(nabla(d, "train").args(["--resume", "S", "--quiet"]));
        assert!(
            stderr(&output).contains("has finished"),
            "{}",
            stderr(&output)
        );
        assert!(
            snapshot(&d.join("S")) == before,
            "a finished run's files changed"
        );
    }
    // A run killed while writing its end (here: its model, summary and a log row lost)
    // gets them back as they were, and is not trained.
    let model = bytes(d.join("S/model.safetensors"));
    let log = std::fs::read_to_string(d.join("S/log.csv")).unwrap();
    std::fs::remove_file(d.join("S/model.safetensors")).unwrap();
    std::fs::remove_file(d.join("S/summary.json")).unwrap();
    std::fs::write(
        d.join("S/log.csv"),
        log.lines().take(2).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let output = succeeds(nabla(d, "train").args(["--resume", "S", "--quiet"]));
    assert!(
        stderr(&output).contains("wrote what its end had not"),
        "{}",
        stderr(&output)
    );
    assert!(bytes(d.join("S/model.safetensors")) == model);
    assert_eq!(std::fs::read_to_string(d.join("S/log.csv")).unwrap(), log);
    assert!(d.join("S/summary.json").is_file());
    // More epochs continue it, and only by them.
    succeeds(nabla(d, "train").args(["--resume", "S", "--epochs", "3", "--quiet"]));
    assert_eq!(epochs(&d.join("S/log.csv")), ["1", "2", "3"]);
    // Early stopping ended this one after epoch 2 (no epoch improves by 100).
    succeeds(train(d).args([
        "--epochs",
        "20",
        "--patience",
        "1",
        "--min-delta",
        "100",
        "--out",
        "E",
    ]));
    assert_eq!(epochs(&d.join("E/log.csv")), ["1", "2"]);
    let before = snapshot(&d.join("E"));
    let output = succeeds(nabla(d, "train").args(["--resume", "E", "--quiet"]));
    assert!(stderr(&output).contains("early stopping ended it after epoch 2"));
    assert!(
        snapshot(&d.join("E")) == before,
        "an early-stopped run's files changed"
    );
}

#[test]
fn the_resume_hint_continues_the_model_the_log_and_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The straight run, and the same run stopped after 2 epochs, then resumed as the
    // interrupted run's hint says (only the checkpoint named).
    succeeds(train(d).args(["--epochs", "4", "--save", "straight.safetensors"]));
    succeeds(train(d).args([
        "--epochs",
        "2",
        "--save",
        "m.safetensors",
        "--log",
        "m.csv",
        "--checkpoint-every",
        "1",
    ]));
    succeeds(nabla(d, "train").args([
        "--resume",
        "m.checkpoint.safetensors",
        "--epochs",
        "4",
        "--quiet",
    ]));
    assert_eq!(epochs(&d.join("m.csv")), ["1", "2", "3", "4"]);
    assert!(
        bytes(d.join("m.safetensors")) == bytes(d.join("straight.safetensors")),
        "the resumed run did not continue --save"
    );
    // The same from inside a run folder, named by its checkpoint file, from elsewhere.
    succeeds(train(d).args(["--epochs", "2", "--out", "M"]));
    std::fs::create_dir(d.join("elsewhere")).unwrap();
    succeeds(nabla(&d.join("elsewhere"), "train").args([
        "--resume",
        "../M/checkpoint.safetensors",
        "--epochs",
        "4",
        "--quiet",
    ]));
    assert_eq!(epochs(&d.join("M/log.csv")), ["1", "2", "3", "4"]);
    assert!(bytes(d.join("M/model.safetensors")) == bytes(d.join("straight.safetensors")));
}

#[test]
fn a_resume_never_writes_into_another_runs_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(train(d).args(["--epochs", "2", "--out", "a"]));
    succeeds(train(d).args(["--epochs", "1", "--out", "b", "--seed", "7"]));
    let (a, b) = (snapshot(&d.join("a")), snapshot(&d.join("b")));
    refused(
        nabla(d, "train").args(["--resume", "a", "--out", "b", "--epochs", "3"]),
        "holds a run already",
    );
    assert!(snapshot(&d.join("b")) == b && snapshot(&d.join("a")) == a);
    // A new folder takes the continued run whole; the first stays as it was.
    succeeds(nabla(d, "train").args(["--resume", "a", "--out", "c", "--epochs", "3", "--quiet"]));
    assert_eq!(epochs(&d.join("c/log.csv")), ["1", "2", "3"]);
    assert!(snapshot(&d.join("a")) == a);
    // `--out .` in a folder holding a log or a model but no config.json is refused too.
    std::fs::create_dir(d.join("loose")).unwrap();
    std::fs::write(d.join("loose/log.csv"), "keep").unwrap();
    refused(
        train(&d.join("loose")).args(["--epochs", "1", "--out", "."]),
        "holds a run already",
    );
    assert_eq!(
        std::fs::read_to_string(d.join("loose/log.csv")).unwrap(),
        "keep"
    );
}

#[test]
fn a_torn_edited_or_garbled_log_is_repaired_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(train(d).args(["--epochs", "5", "--out", "straight"]));
    succeeds(train(d).args(["--epochs", "2", "--out", "R"]));
    let log = d.join("R/log.csv");
    let whole = std::fs::read_to_string(&log).unwrap();
    // A torn last row.
    std::fs::write(&log, format!("{whole}3,false,2.2")).unwrap();
    succeeds(nabla(d, "train").args(["--resume", "R", "--epochs", "3", "--quiet"]));
    assert_eq!(epochs(&log), ["1", "2", "3"]);
    // A deleted row.
    let text = std::fs::read_to_string(&log).unwrap();
    let without_2: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with("2,"))
        .collect();
    std::fs::write(&log, without_2.join("\n") + "\n").unwrap();
    let output = succeeds(nabla(d, "train").args(["--resume", "R", "--epochs", "4", "--quiet"]));
    assert!(
        stderr(&output).contains("epoch 2 rebuilt"),
        "{}",
        stderr(&output)
    );
    assert_eq!(epochs(&log), ["1", "2", "3", "4"]);
    // A garbled header.
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("epoch,partial", "epoch;partial", 1)).unwrap();
    succeeds(nabla(d, "train").args(["--resume", "R", "--epochs", "5", "--quiet"]));
    assert_eq!(epochs(&log), ["1", "2", "3", "4", "5"]);
    for name in ["train_loss", "test_acc", "lr"] {
        assert_eq!(
            column(&log, name),
            column(&d.join("straight/log.csv"), name),
            "{name}"
        );
    }
}

/// The checkpoint at `path` with its `training` metadata's `field` set to `value`.
fn edit_training(path: &Path, field: &str, value: serde_json::Value) {
    let bytes = bytes(path);
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
    let metadata = &mut header["__metadata__"];
    let mut training: serde_json::Value =
        serde_json::from_str(metadata["training"].as_str().unwrap()).unwrap();
    training[field] = value;
    metadata["training"] = training.to_string().into();
    let mut text = header.to_string().into_bytes();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut edited = (text.len() as u64).to_le_bytes().to_vec();
    edited.extend(text);
    edited.extend(&bytes[8 + length..]);
    std::fs::write(path, edited).unwrap();
}

#[test]
fn an_edited_or_damaged_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(train(d).args(["--epochs", "2", "--optimizer", "adam", "--out", "R"]));
    let checkpoint = d.join("R/checkpoint.safetensors");
    let original = bytes(&checkpoint);
    for (field, value) in [
        ("epoch", serde_json::json!(1)),
        ("epoch", serde_json::json!(0)),
        ("steps", serde_json::json!(0)),
    ] {
        std::fs::write(&checkpoint, &original).unwrap();
        edit_training(&checkpoint, field, value);
        refused(
            nabla(d, "train").args(["--resume", "R", "--epochs", "4"]),
            "do not match the digest",
        );
    }
    // One weight changed in place.
    let mut bytes = original.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&checkpoint, &bytes).unwrap();
    refused(
        nabla(d, "train").args(["--resume", "R", "--epochs", "4"]),
        "do not match the digest",
    );
    // One optimizer buffer taken out (the file stays a valid safetensors file).
    let file = safetensors::SafeTensors::deserialize(&original).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&original).unwrap();
    let kept: Vec<_> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "optimizer.exp_avg_sq.0.weight")
        .collect();
    let rewritten = safetensors::serialize(kept, metadata.metadata().clone()).unwrap();
    std::fs::write(&checkpoint, rewritten).unwrap();
    refused(
        nabla(d, "train").args(["--resume", "R", "--epochs", "4"]),
        "do not match the digest",
    );
    std::fs::write(&checkpoint, &original).unwrap();
    succeeds(nabla(d, "train").args(["--resume", "R", "--epochs", "3", "--quiet"]));
}

#[test]
fn data_files_of_one_name_in_two_folders_are_checked_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = table_rows();
    for folder in ["dA", "dB"] {
        std::fs::create_dir(d.join(folder)).unwrap();
        std::fs::write(d.join(folder).join("data.csv"), &rows).unwrap();
    }
    let mut command = csv_run(d, "dA/data.csv", "dB/data.csv");
    command.args(["--epochs", "1", "--out", "R", "--quiet"]);
    succeeds(&mut command);
    // The training file is edited; the test file, of the same name, is not.
    std::fs::write(d.join("dA/data.csv"), rows.replacen("0,0,0", "6,0,0", 1)).unwrap();
    refused(
        nabla(d, "train").args(["--resume", "R", "--epochs", "2"]),
        "data",
    );
}

/// Starts `command` with piped output.
fn spawn(command: &mut Command) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, signal: &str) {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
}

/// Reads `child`'s stdout until the line of epoch `epoch` (`epoch   2/50 ...`).
fn wait_for_epoch(
    child: &mut Child,
    epoch: usize,
) -> std::io::BufReader<std::process::ChildStdout> {
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() > 0,
            "ended before epoch {epoch}"
        );
        let number = line
            .strip_prefix("epoch")
            .and_then(|rest| rest.trim_start().split('/').next())
            .and_then(|number| number.parse::<usize>().ok());
        if number == Some(epoch) {
            return stdout;
        }
    }
}

/// A run on 20,000 MNIST rows (long enough to be killed part-way).
fn long_run(dir: &Path) -> Command {
    let mut command = Command::new(bin());
    command.current_dir(dir).args([
        "train",
        "--dataset",
        &bundled("mnist"),
        "--train-rows",
        "20000",
        "--test-rows",
        "1000",
        "--hidden",
        "128",
        "--threads",
        "1",
    ]);
    command
}

#[test]
fn a_run_killed_in_its_first_epoch_can_be_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(long_run(d).args(["--epochs", "2", "--out", "straight", "--quiet"]));
    let mut child = spawn(long_run(d).args(["--epochs", "2", "--out", "K"]));
    let started = Instant::now();
    // Killed as soon as the folder holds anything, well before the first epoch ends.
    while !d.join("K/checkpoint.safetensors").exists() && !d.join("K/config.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the folder never appeared"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    signal(&child, "-KILL");
    child.wait().unwrap();
    succeeds(nabla(d, "train").args(["--resume", "K", "--quiet"]));
    assert!(bytes(d.join("K/model.safetensors")) == bytes(d.join("straight/model.safetensors")));
    assert_eq!(epochs(&d.join("K/log.csv")), ["1", "2"]);
}

#[test]
fn ctrl_c_with_early_stopping_saves_the_best_epochs_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No epoch improves on the first by 100: the best epoch stays 1.
    let mut child = spawn(long_run(d).args([
        "--epochs",
        "50",
        "--patience",
        "100",
        "--min-delta",
        "100",
        "--save",
        "m.safetensors",
        "--log",
        "m.csv",
    ]));
    let _stdout = wait_for_epoch(&mut child, 2);
    signal(&child, "-INT");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(epochs(&d.join("m.csv")).len() >= 2);
    succeeds(long_run(d).args(["--epochs", "1", "--save", "one.safetensors", "--quiet"]));
    assert!(
        bytes(d.join("m.safetensors")) == bytes(d.join("one.safetensors")),
        "the saved model does not hold the best epoch's weights"
    );
}

#[test]
fn ctrl_c_during_the_final_save_is_reported_and_the_files_are_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A large model in f64: its checkpoint and model take a while to write.
    let mut command = large_run(d, &["--train-rows", "1000", "--test-rows", "1000"]);
    command.args(["--epochs", "1", "--out", "F"]);
    let mut child = spawn(&mut command);
    let _stdout = wait_for_epoch(&mut child, 1);
    signal(&child, "-INT");
    let output = child.wait_with_output().unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{message}");
    assert!(message.contains("while saving"), "{message}");
    succeeds(
        nabla(d, "eval")
            .args(["--model", "F/model.safetensors", "--dataset"])
            .arg(bundled("mnist"))
            .args(["--test-rows", "10", "--train-rows", "10"]),
    );
}

#[test]
fn two_runs_never_write_one_output_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let in_use = "in use by another nabla process (pid";
    for (first, second, expected) in [
        (
            vec!["--save", "m.safetensors"],
            vec!["--save", "m.safetensors"],
            in_use,
        ),
        (vec!["--out", "R"], vec!["--out", "R"], in_use),
        (vec!["--log", "l.csv"], vec!["--log", "l.csv"], in_use),
        (
            vec!["--save", "m.safetensors", "--checkpoint-every", "1"],
            vec!["--log", "m.checkpoint.safetensors"],
            "a run's resumable checkpoint",
        ),
    ] {
        let mut child = spawn(long_run(d).args(["--epochs", "50"]).args(&first));
        let _stdout = wait_for_epoch(&mut child, 1);
        refused(train(d).args(["--epochs", "1"]).args(&second), expected);
        signal(&child, "-KILL");
        child.wait().unwrap();
        let _ = std::fs::remove_dir_all(d.join("R"));
        let _ = std::fs::remove_file(d.join("m.checkpoint.safetensors"));
    }
}

#[test]
fn saving_keeps_the_files_mode_and_follows_no_link() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(train(d).args(["--epochs", "1", "--save", "m.safetensors"]));
    let set_mode = |mode| {
        std::fs::set_permissions(
            d.join("m.safetensors"),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )
        .unwrap()
    };
    set_mode(0o600);
    std::fs::write(d.join("victim"), "keep").unwrap();
    std::os::unix::fs::symlink(d.join("victim"), d.join("m.safetensors.tmp")).unwrap();
    succeeds(train(d).args(["--epochs", "1", "--save", "m.safetensors", "--seed", "3"]));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.join("m.safetensors"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(d.join("victim")).unwrap(), "keep");
}

#[test]
fn no_command_writes_onto_its_own_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = table_rows();
    std::fs::write(d.join("tr.csv"), &rows).unwrap();
    std::fs::write(d.join("te.csv"), &rows).unwrap();
    let mut command = csv_run(d, "tr.csv", "te.csv");
    command.args(["--epochs", "1", "--log", "tr.csv"]);
    refused(&mut command, "input");
    assert_eq!(std::fs::read_to_string(d.join("tr.csv")).unwrap(), rows);
    succeeds(train(d).args(["--epochs", "2", "--log", "x.csv"]));
    let log = bytes(d.join("x.csv"));
    refused(
        nabla(d, "summarize").args(["x.csv", "--csv", "x.csv"]),
        "input",
    );
    refused(
        nabla(d, "summarize").args(["x.csv", "--markdown", "x.csv"]),
        "input",
    );
    refused(nabla(d, "plot").args(["x.csv", "-o", "x.csv"]), "input");
    assert!(bytes(d.join("x.csv")) == log);
}

#[test]
fn sizes_from_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A batch larger than the rows is one batch of all of them.
    for batch in ["18446744073709551615", "4294967296"] {
        let output = run(train(d).args(["--epochs", "1", "--batch-size", batch]));
        assert!(
            output.status.success(),
            "--batch-size {batch}: {}",
            stderr(&output)
        );
    }
    // A model of 2,000,000 classes, written directly: its confusion matrix would take
    // 32 TB.
    let classes = 2_000_000usize;
    let tensor = |shape: Vec<usize>| {
        let count: usize = shape.iter().product();
        (shape, vec![0u8; count * 4])
    };
    let tensors = [
        ("0.weight", tensor(vec![1, 784])),
        ("0.bias", tensor(vec![1])),
        ("2.weight", tensor(vec![classes, 1])),
        ("2.bias", tensor(vec![classes])),
    ];
    let views: Vec<_> = tensors
        .iter()
        .map(|(name, (shape, bytes))| {
            (
                name.to_string(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .unwrap(),
            )
        })
        .collect();
    let layers = format!(
        r#"[{{"type":"linear","in_features":784,"out_features":1}},{{"type":"relu"}},{{"type":"linear","in_features":1,"out_features":{classes}}}]"#
    );
    let metadata = std::collections::HashMap::from([
        ("format".to_string(), "nabla-mlp".to_string()),
        ("dtype".to_string(), "f32".to_string()),
        ("layers".to_string(), layers),
    ]);
    safetensors::serialize_to_file(views, Some(metadata), &d.join("big.safetensors")).unwrap();
    let started = Instant::now();
    let output = run(nabla(d, "eval")
        .args([
            "--model",
            "big.safetensors",
            "--test-rows",
            "5",
            "--train-rows",
            "5",
            "--classes",
            "2000000",
            "--dataset",
        ])
        .arg(bundled("mnist-subset")));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("confusion matrix"),
        "{}",
        stderr(&output)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn plot_ends_on_any_epoch_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(train(d).args(["--epochs", "2", "--log", "x.csv"]));
    let text = std::fs::read_to_string(d.join("x.csv")).unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(index, line)| {
            if index == 2 {
                line.replacen("2,", "inf,", 1)
            } else {
                line.to_string()
            }
        })
        .collect();
    std::fs::write(d.join("x.csv"), edited.join("\n") + "\n").unwrap();
    let mut command = nabla(d, "plot");
    command.args(["x.csv", "-o", "p.svg"]);
    let mut child = spawn(&mut command);
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("plot did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("x.csv:3: epoch 'inf' is not a finite number"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn eval_holds_out_the_validation_rows_the_model_was_trained_without() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = [
        "--dataset".to_string(),
        bundled("mnist-subset"),
        "--train-rows".into(),
        "300".into(),
        "--test-rows".into(),
        "100".into(),
        "--val-split".into(),
        "0.3".into(),
    ];
    for format in ["m.safetensors", "m.npz"] {
        succeeds(
            train(d)
                .args(["--val-split", "0.3", "--seed", "42", "--epochs", "3"])
                .args([
                    "--activation",
                    "relu",
                    "--lr",
                    "0.1",
                    "--save",
                    format,
                    "--log",
                    "m.csv",
                ]),
        );
        let logged: f64 = column(&d.join("m.csv"), "val_loss")[2].parse().unwrap();
        let val_loss = |extra: &[&str]| -> f64 {
            let output = succeeds(
                nabla(d, "eval")
                    .args(["--model", format])
                    .args(&data)
                    .args(extra),
            );
            let text = String::from_utf8(output.stdout).unwrap();
            let line = text
                .lines()
                .find(|line| line.starts_with("val"))
                .unwrap()
                .to_string();
            line.split_whitespace().nth(2).unwrap().parse().unwrap()
        };
        assert!(
            (val_loss(&[]) - logged).abs() < 1e-5,
            "{format}: {} vs {logged}",
            val_loss(&[])
        );
        assert!(
            (val_loss(&["--seed", "10701"]) - logged).abs() > 1e-4,
            "{format}"
        );
    }
}

#[test]
fn two_outputs_of_one_run_may_not_name_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (flags, clash) in [
        (
            vec!["--save", "m.npz", "--log", "m.json"],
            "--save and --log both name m.json",
        ),
        (
            vec!["--out", "D", "--save", "D/checkpoint.safetensors"],
            "--save and the checkpoint both name",
        ),
        (
            vec!["--out", "D", "--log", "D/config.json"],
            "--log and the run folder's config.json both name",
        ),
        (
            vec![
                "--save",
                "z.safetensors",
                "--log",
                "z.checkpoint.safetensors",
                "--checkpoint-every",
                "5",
            ],
            "--log and the checkpoint both name",
        ),
    ] {
        refused(train(d).args(["--epochs", "1"]).args(&flags), clash);
    }
    // A path ending in a slash names a directory: refused before training, not after.
    refused(
        train(d).args(["--epochs", "1", "--save", "m.safetensors/"]),
        "--save m.safetensors/: cannot write there",
    );
}

#[test]
fn a_copied_run_continues_its_own_files_and_a_resume_from_elsewhere_reads_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("exp1")).unwrap();
    succeeds(train(&d.join("exp1")).args([
        "--epochs",
        "2",
        "--save",
        "m.safetensors",
        "--log",
        "m.csv",
        "--checkpoint-every",
        "1",
    ]));
    let copy = |from: &str, to: &str| {
        std::fs::create_dir(d.join(to)).unwrap();
        for entry in std::fs::read_dir(d.join(from)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), d.join(to).join(entry.file_name())).unwrap();
        }
    };
    copy("exp1", "exp2");
    let original = snapshot(&d.join("exp1"));
    succeeds(nabla(d, "train").args([
        "--resume",
        "exp2/m.checkpoint.safetensors",
        "--epochs",
        "3",
        "--quiet",
    ]));
    assert!(
        snapshot(&d.join("exp1")) == original,
        "the original run was written"
    );
    assert_eq!(epochs(&d.join("exp2/m.csv")), ["1", "2", "3"]);
    // Relative data paths, resumed from another directory.
    let rows = table_rows();
    std::fs::write(d.join("tr.csv"), &rows).unwrap();
    std::fs::create_dir_all(d.join("w/deeper")).unwrap();
    let mut command = csv_run(&d.join("w"), "../tr.csv", "../tr.csv");
    command.args(["--epochs", "1", "--out", "r", "--quiet"]);
    succeeds(&mut command);
    succeeds(
        nabla(&d.join("w/deeper"), "train").args(["--resume", "../r", "--epochs", "2", "--quiet"]),
    );
    assert_eq!(epochs(&d.join("w/r/log.csv")), ["1", "2"]);
}

#[test]
fn devices_and_pipes_are_refused_as_models_checkpoints_data_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A device could be read without end; opening a named pipe waits for a writer.
    std::os::unix::fs::symlink("/dev/zero", d.join("z.safetensors")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.join("z.csv")).unwrap();
    for name in ["p.safetensors", "p.csv"] {
        let made = Command::new("mkfifo").arg(d.join(name)).status().unwrap();
        assert!(made.success());
    }
    let started = Instant::now();
    for stem in ["z", "p"] {
        let (model, data) = (format!("{stem}.safetensors"), format!("{stem}.csv"));
        refused(
            nabla(d, "train").args(["--resume", &model]),
            "not a regular file",
        );
        refused(
            nabla(d, "eval").args(["--model", &model]),
            "not a regular file",
        );
        refused(
            nabla(d, "train").args(["--train-file", &data, "--test-file", &data, "--epochs", "1"]),
            "is a device or a pipe, not a data file",
        );
        refused(
            nabla(d, "plot").args([&data, "-o", "x.svg"]),
            "not a regular file",
        );
        refused(nabla(d, "summarize").arg(&data), "not a regular file");
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_finished_runs_torn_or_padded_log_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(train(d).args(["--epochs", "2", "--out", "L"]));
    let log = d.join("L/log.csv");
    let whole = std::fs::read_to_string(&log).unwrap();
    // Cut into the settings columns of the last row.
    std::fs::write(&log, &whole[..whole.len() - 20]).unwrap();
    succeeds(nabla(d, "train").args(["--resume", "L", "--quiet"]));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), whole);
    std::fs::write(&log, format!("{whole}1,false,garbage\n")).unwrap();
    succeeds(nabla(d, "train").args(["--resume", "L", "--quiet"]));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), whole);
}

#[test]
fn no_command_overwrites_another_runs_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A live run: plot, summarize and train may not write its files.
    let mut child = spawn(long_run(d).args(["--epochs", "50", "--out", "L"]));
    let _stdout = wait_for_epoch(&mut child, 1);
    refused(
        nabla(d, "plot").args(["L", "-o", "L/checkpoint.safetensors"]),
        "a file of the run in L",
    );
    refused(
        nabla(d, "summarize").args(["L", "--csv", "L/model.safetensors"]),
        "a file of the run in L",
    );
    refused(
        train(d).args(["--epochs", "1", "--log", "L/config.json"]),
        "a file of the run in L",
    );
    signal(&child, "-KILL");
    child.wait().unwrap();
    // A finished one: neither.
    succeeds(train(d).args(["--epochs", "1", "--out", "V"]));
    let before = snapshot(&d.join("V"));
    refused(
        train(d).args(["--epochs", "1", "--save", "V/model.safetensors"]),
        "a file of the run in V",
    );
    refused(
        train(d).args(["--epochs", "1", "--log", "V/log.csv"]),
        "a file of the run in V",
    );
    assert!(snapshot(&d.join("V")) == before);
    // One command's two outputs naming one file.
    refused(
        nabla(d, "summarize").args(["V", "--markdown", "o.md", "--csv", "o.md"]),
        "--markdown and --csv both name o.md",
    );
}

#[test]
fn one_ctrl_c_forwarded_twice_is_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A terminal's Ctrl-C reaches nabla and a wrapper such as `timeout`, which forwards
    // it again: two signals a moment apart, from one keypress.
    // A large model in f64, so that the saves the first signal starts take a while.
    let mut command = large_run(d, &["--train-rows", "2000", "--test-rows", "100"]);
    command.args(["--epochs", "50", "--out", "T"]);
    let mut child = spawn(&mut command);
    let _stdout = wait_for_epoch(&mut child, 1);
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(20));
    signal(&child, "-INT");
    let output = child.wait_with_output().unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{message}");
    assert!(message.contains("interrupted"), "{message}");
    assert!(d.join("T/model.safetensors").is_file());
}

#[test]
fn a_checkpoints_header_does_not_grow_with_the_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let header = |epochs: &str, out: &str| {
        let mut command = Command::new(bin());
        command.current_dir(d).args([
            "train",
            "--dataset",
            &bundled("mnist-subset"),
            "--train-rows",
            "50",
            "--test-rows",
            "1",
            "--batch-size",
            "50",
            "--hidden",
            "2",
            "--threads",
            "1",
            "--quiet",
            "--epochs",
            epochs,
            "--out",
            out,
        ]);
        succeeds(&mut command);
        let bytes = std::fs::read(d.join(out).join("checkpoint.safetensors")).unwrap();
        u64::from_le_bytes(bytes[..8].try_into().unwrap())
    };
    // The history (about 285 bytes an epoch) would pass the safetensors reader's 100 MB
    // header limit after some 350,000 epochs: it is a tensor.
    let (short, long) = (header("2", "a"), header("400", "b"));
    assert!(
        long < short + 64,
        "header {short} bytes after 2 epochs, {long} after 400"
    );
    succeeds(nabla(d, "train").args(["--resume", "b", "--epochs", "401", "--quiet"]));
}

#[test]
fn an_interrupted_runs_checkpoint_and_a_users_files_are_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An interrupted run's state outside a folder: no other command writes over it, and
    // a new run with the same --save is told to resume it instead.
    succeeds(train(d).args([
        "--epochs",
        "2",
        "--save",
        "m.safetensors",
        "--log",
        "m.csv",
        "--checkpoint-every",
        "1",
    ]));
    let state = bytes(d.join("m.checkpoint.safetensors"));
    refused(
        nabla(d, "plot").args(["m.csv", "-o", "m.checkpoint.safetensors"]),
        "resumable checkpoint",
    );
    refused(
        nabla(d, "summarize").args(["m.csv", "--csv", "m.checkpoint.safetensors"]),
        "resumable checkpoint",
    );
    refused(
        train(d).args(["--epochs", "1", "--log", "m.checkpoint.safetensors"]),
        "resumable checkpoint",
    );
    refused(
        train(d).args([
            "--epochs",
            "1",
            "--save",
            "m.safetensors",
            "--checkpoint-every",
            "1",
        ]),
        "resume it with --resume m.checkpoint.safetensors",
    );
    assert!(bytes(d.join("m.checkpoint.safetensors")) == state);
    // A user's own notes.json beside --save notes.npz.
    std::fs::write(d.join("notes.json"), "{\"my\": \"notes\"}").unwrap();
    refused(
        train(d).args(["--epochs", "1", "--save", "notes.npz"]),
        "which nabla did not write",
    );
    assert_eq!(
        std::fs::read_to_string(d.join("notes.json")).unwrap(),
        "{\"my\": \"notes\"}"
    );
    // A finished run continued into a new folder writes nothing there.
    succeeds(train(d).args(["--epochs", "2", "--out", "a"]));
    let output = succeeds(nabla(d, "train").args(["--resume", "a", "--out", "c", "--quiet"]));
    assert!(
        stderr(&output).contains("nothing was trained or written"),
        "{}",
        stderr(&output)
    );
    assert!(snapshot(&d.join("c")).is_empty());
    // A folder no run got a checkpoint into: said so.
    std::fs::create_dir(d.join("empty")).unwrap();
    refused(
        nabla(d, "train").args(["--resume", "empty"]),
        "none is there",
    );
}

#[test]
fn a_write_protected_model_is_kept() {
    // Run as an ordinary user (root may write anything): `nobody` when the tests run as
    // root, as in CI, else the user running them.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    let as_user = || {
        let mut command = if root {
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin());
            command
        } else {
            Command::new(bin())
        };
        command.current_dir(d).args([
            "train",
            "--dataset",
            &bundled("mnist-subset"),
            "--train-rows",
            "100",
            "--test-rows",
            "50",
            "--hidden",
            "4",
            "--epochs",
            "1",
            "--quiet",
            "--save",
            "keep.safetensors",
        ]);
        command
    };
    succeeds(&mut as_user());
    let model = d.join("keep.safetensors");
    std::fs::set_permissions(&model, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
    let kept = bytes(&model);
    refused(as_user().args(["--seed", "5"]), "is write-protected");
    assert!(bytes(&model) == kept);
}

#[test]
fn eval_predict_and_plot_take_a_run_folder_as_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(train(d).args(["--epochs", "1", "--out", "R"]));
    let data = [
        "--dataset".to_string(),
        bundled("mnist-subset"),
        "--test-rows".into(),
        "20".into(),
        "--train-rows".into(),
        "20".into(),
    ];
    let by_folder = succeeds(nabla(d, "eval").args(["--model", "R"]).args(&data)).stdout;
    let by_file = succeeds(
        nabla(d, "eval")
            .args(["--model", "R/model.safetensors"])
            .args(&data),
    )
    .stdout;
    assert_eq!(by_folder, by_file);
    succeeds(
        nabla(d, "plot")
            .args(["--model", "R", "-o", "confusion.svg"])
            .args(&data),
    );
    let input = Path::new(&bundled("mnist-subset")).join("test.csv.gz");
    let labels = |model: &str| {
        succeeds(
            nabla(d, "predict")
                .args(["--model", model, "--input"])
                .arg(&input),
        )
        .stdout
    };
    assert_eq!(labels("R"), labels("R/model.safetensors"));
}
