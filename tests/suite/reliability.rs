//! Hostile but realistic input, as the reliability issue found it: every case ends in one
//! `nabla: error: ...` line and exit status 2 (a closed stdout: quietly, status 0), never
//! a panic, an abort, a silent wrong result or a lost model.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use nabla::{checkpoint, ActivationKind, Init, MultiLayerPerceptron};
use sha2::{Digest, Sha256};

use super::cli::{assert_refused, column, nabla, write_test_rows};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("nabla")
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

/// A copy of the bundled MNIST whose training images are the plain file `bytes`.
fn mnist_with_train_images(bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(
            manifest().join("data/mnist").join(name),
            dir.path().join(name),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), bytes).unwrap();
    dir
}

/// A small 784-16-10 model saved at `dir/NAME` (safetensors or npz by the extension).
fn small_model(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let model = MultiLayerPerceptron::<f32>::from_sizes(
        &[784, 16, 10],
        ActivationKind::Relu,
        Init::Uniform,
        3,
    )
    .unwrap();
    checkpoint::save(&model, &path).unwrap();
    path
}

#[test]
fn idx_header_whose_sizes_overflow_is_refused_everywhere() {
    // Magic 0x803, dimensions 2^31 x 2^31 x 4: 2^64 bytes.
    let data = mnist_with_train_images(&[0, 0, 8, 3, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 4]);
    let dir = text(data.path());
    let scratch = tempfile::tempdir().unwrap();
    let model = small_model(scratch.path(), "m.safetensors");
    let out = text(&scratch.path().join("subset"));
    for args in [
        vec!["train", "--dataset", &dir, "--epochs", "1"],
        vec![
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--dataset",
            &dir,
        ],
        vec!["make-subset", "--mnist", &dir, "--out", &out],
    ] {
        assert_refused(&args, "would need more than 2^64 bytes");
    }
}

#[test]
fn huge_sizes_from_flags_are_refused_before_allocating() {
    for (flag, value, expected) in [
        (
            "--classes",
            "18446744073709551615",
            "more than BLAS's largest dimension",
        ),
        (
            "--classes",
            "10000000000",
            "more than BLAS's largest dimension",
        ),
        ("--classes", "2000000000", "would need 8.2 TB"),
        (
            "--hidden",
            "3000000000",
            "more than BLAS's largest dimension",
        ),
        ("--hidden", "100000,100000", "would need 160.6 GB"),
        ("--hidden", "99999999", "would need 1.3 TB"),
    ] {
        let started = Instant::now();
        assert_refused(&["train", "--epochs", "1", flag, value], expected);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{flag} {value}: refused only after {:?}",
            started.elapsed()
        );
    }
}

/// `.npy` bytes: the header for `descr` and `shape` (a Python tuple), then `data`.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// A stored (uncompressed) zip of `members`.
fn zip_of(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in members {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Writes `npz` to `dir/m.npz` with a sidecar describing `layers` (JSON) and recording
/// the npz's true SHA-256, so that only the arrays (or the layers) are hostile.
fn npz_with_sidecar(dir: &Path, npz: &[u8], layers: &str, dtype: &str, format: &str) -> PathBuf {
    let path = dir.join("m.npz");
    std::fs::write(&path, npz).unwrap();
    let hash: String = Sha256::digest(npz)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sidecar = format!(
        r#"{{"format": "{format}", "dtype": "{dtype}", "layers": {layers}, "npz_sha256": "{hash}"}}"#
    );
    std::fs::write(dir.join("m.json"), sidecar).unwrap();
    path
}

const LAYERS_784_256_10: &str = r#"[{"type": "linear", "in_features": 784, "out_features": 256}, {"type": "relu"}, {"type": "linear", "in_features": 256, "out_features": 10}]"#;

#[test]
fn model_files_that_claim_huge_shapes_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.csv");
    write_test_rows(&rows, 3);
    let huge = zip_of(&[("0.weight.npy", npy("<f4", "(100000, 100000)", &[0; 64]))]);
    assert!(huge.len() < 1024);
    let model = npz_with_sidecar(dir.path(), &huge, LAYERS_784_256_10, "f32", "nabla-mlp");
    let model = text(&model);
    let expected = "'0.weight' has shape [100000, 100000], the model needs [256, 784]";
    assert_refused(
        &["predict", "--model", &model, "--input", &text(&rows)],
        expected,
    );
    assert_refused(&["eval", "--model", &model], expected);
    assert_refused(
        &[
            "train",
            "--epochs",
            "1",
            "--activation",
            "relu",
            "--init-from",
            &model,
        ],
        expected,
    );

    // Sidecars that claim an impossible width or widths too large for memory.
    let absurd = r#"[{"type": "linear", "in_features": 4611686018427387904, "out_features": 256}]"#;
    npz_with_sidecar(dir.path(), &huge, absurd, "f32", "nabla-mlp");
    assert_refused(&["eval", "--model", &model], "BLAS's largest dimension");
    let large = r#"[{"type": "linear", "in_features": 784, "out_features": 1000000}, {"type": "relu"}, {"type": "linear", "in_features": 1000000, "out_features": 100000}]"#;
    npz_with_sidecar(dir.path(), &huge, large, "f32", "nabla-mlp");
    assert_refused(&["eval", "--model", &model], "would need");
    // An array shorter than its header says is "truncated".
    let short = zip_of(&[
        ("0.weight.npy", npy("<f4", "(256, 784)", &[0; 100])),
        ("0.bias.npy", npy("<f4", "(256,)", &[0; 1024])),
    ]);
    npz_with_sidecar(dir.path(), &short, LAYERS_784_256_10, "f32", "nabla-mlp");
    assert_refused(
        &["eval", "--model", &model],
        "truncated: 100 of the 802816 data bytes",
    );
    // Sidecars of another dtype or format.
    npz_with_sidecar(dir.path(), &short, LAYERS_784_256_10, "f16", "nabla-mlp");
    assert_refused(
        &["eval", "--model", &model],
        "dtype 'f16', expected 'f32' or 'f64'",
    );
    npz_with_sidecar(dir.path(), &short, LAYERS_784_256_10, "f32", "bogus");
    assert_refused(
        &["eval", "--model", &model],
        "format 'bogus', expected 'nabla-mlp'",
    );
}

#[test]
fn non_finite_weights_are_refused_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.csv");
    write_test_rows(&rows, 3);
    for name in ["nan.safetensors", "nan.npz"] {
        let path = dir.path().join(name);
        let mut model = MultiLayerPerceptron::<f32>::from_sizes(
            &[784, 16, 10],
            ActivationKind::Relu,
            Init::Uniform,
            3,
        )
        .unwrap();
        model.layers_mut()[2].as_linear_mut().unwrap().weights_mut()[[3, 5]] = f32::NAN;
        checkpoint::save(&model, &path).unwrap();
        let model = text(&path);
        let expected = "'2.weight' at [3, 5] is NaN";
        assert_refused(
            &["predict", "--model", &model, "--input", &text(&rows)],
            expected,
        );
        assert_refused(&["eval", "--model", &model], expected);
        assert_refused(
            &[
                "train",
                "--epochs",
                "1",
                "--hidden",
                "16",
                "--init-from",
                &model,
            ],
            expected,
        );
    }
}

/// Runs `nabla ARGS` with stdout read for `lines` lines and then closed.
fn with_stdout_closed_after(args: &[&str], lines: usize) -> (std::process::ExitStatus, String) {
    let mut child = Process::new(binary())
        .current_dir(manifest())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..lines {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
    }
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path(), "m.safetensors");
    let log = dir.path().join("log.csv");
    let saved = dir.path().join("saved.safetensors");
    let rows = dir.path().join("rows.csv");
    write_test_rows(&rows, 2000);
    let model = text(&model);
    let train = [
        "train",
        "--train-rows",
        "500",
        "--test-rows",
        "100",
        "--hidden",
        "16",
        "--epochs",
        "30",
        "--log",
        &text(&log),
        "--save",
        &text(&saved),
    ];
    let eval = ["eval", "--model", &model];
    let rows = text(&rows);
    let predict = ["predict", "--model", &model, "--input", &rows];
    for (args, lines) in [(&train[..], 2), (&eval[..], 1), (&predict[..], 1)] {
        let (status, stderr) = with_stdout_closed_after(args, lines);
        assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    // The training run went on without its reader: every epoch logged, the model saved.
    assert_eq!(column(&log, "epoch").len(), 30);
    assert!(checkpoint::load::<f32>(&saved).is_ok());
}

#[test]
fn output_paths_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("taken.safetensors");
    std::fs::create_dir(&taken).unwrap();
    let device = dir.path().join("full.safetensors");
    std::os::unix::fs::symlink("/dev/full", &device).unwrap();
    let cases = [
        ("--save", "/proc/m.npz".to_string(), "/proc/m.npz"),
        ("--save", text(&taken), "is a directory"),
        ("--save", text(&device), "not a regular file"),
        (
            "--save",
            text(&dir.path().join("no/such/m.safetensors")),
            "does not exist",
        ),
        (
            "--save",
            text(&dir.path().join("m.pt")),
            ".safetensors or .npz",
        ),
        ("--log", "/proc/log.csv".to_string(), "/proc/log.csv"),
        ("--log", text(dir.path()), "is a directory"),
        ("--log", "-".to_string(), "invalid --log -"),
    ];
    for (flag, path, expected) in cases {
        // Full MNIST and 50 epochs: a refusal after training would take minutes.
        let started = Instant::now();
        assert_refused(&["train", "--dataset", "mnist", flag, &path], expected);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{flag} {path}: {:?}",
            started.elapsed()
        );
    }
    assert!(std::fs::metadata("/dev/full")
        .unwrap()
        .file_type()
        .is_char_device());
    let debris: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(debris.len(), 2, "nothing was written: {debris:?}");
}

#[test]
fn empty_test_sets_and_absurd_thread_counts() {
    assert_refused(&["train", "--test-rows", "0"], "invalid --test-rows 0");
    assert_refused(&["train", "--train-rows", "0"], "invalid --train-rows 0");
    let output = Process::new(binary())
        .current_dir(manifest())
        .args([
            "train",
            "--threads",
            "1000",
            "--train-rows",
            "200",
            "--test-rows",
            "50",
            "--epochs",
            "1",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let hardware = nabla::threads::Limits::read().hardware();
    let cores = hardware.threads;
    assert!(
        stderr.contains(&format!(
            "nabla: warning: --threads 1000 is more than this process may use ({} ({})); using {cores}",
            if cores == 1 { "1 thread".to_string() } else { format!("{cores} threads") },
            hardware.source
        )),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .contains(&format!(", {cores} threads ({}; gemm ", hardware.source)),
        "{stdout}"
    );
}

#[test]
fn bad_input_is_quoted_short_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let test = dir.path().join("test.csv");
    std::fs::write(&test, "0.5,1\n").unwrap();
    // A 1 MB field is quoted to 40 characters.
    let long = dir.path().join("long.csv");
    std::fs::write(&long, format!("0.5,1\n{},1\n", "7x".repeat(500_000))).unwrap();
    let output = nabla()
        .arg("--train-file")
        .arg(&long)
        .arg("--test-file")
        .arg(&test)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.len() < 300 && stderr.contains("7x7x7x...'"),
        "{} bytes: {}",
        stderr.len(),
        &stderr[..stderr.len().min(300)]
    );
    // Control bytes are escaped, not sent to the terminal.
    let binary_input = dir.path().join("binary.csv");
    std::fs::write(&binary_input, b"0.5,1\n\x1b[31mred\x00,1\n").unwrap();
    let output = nabla()
        .arg("--train-file")
        .arg(&binary_input)
        .arg("--test-file")
        .arg(&test)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\0') && stderr.contains("\\u{1b}"),
        "{stderr:?}"
    );
    // A directory given as a file says so.
    assert_refused(
        &[
            "train",
            "--train-file",
            &text(dir.path()),
            "--test-file",
            &text(&test),
        ],
        "is a directory",
    );
}

#[test]
fn compressed_npz_from_numpy_loads() {
    // tests/fixtures/numpy_compressed.npz: the arrays of numpy_sequential.npz written by
    // np.savez_compressed (deflated members).
    let fixture = manifest().join("tests/fixtures/numpy_compressed.npz");
    let stored = manifest().join("tests/fixtures/numpy_sequential.npz");
    let mut a =
        MultiLayerPerceptron::<f64>::from_sizes(&[4, 3, 2], ActivationKind::Relu, Init::Zeros, 1)
            .unwrap();
    let mut b = a.clone();
    checkpoint::load_weights_into(&mut a, &fixture).unwrap();
    checkpoint::load_weights_into(&mut b, &stored).unwrap();
    for (x, y) in a.linear_layers().zip(b.linear_layers()) {
        assert_eq!(x.weights(), y.weights());
        assert_eq!(x.bias(), y.bias());
    }
    assert_eq!(a.linear_layers().next().unwrap().bias()[0], 0.5);
}

#[test]
fn a_sidecar_that_does_not_match_its_npz_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = small_model(dir.path(), "m.npz");
    let sidecar = std::fs::read(dir.path().join("m.json")).unwrap();
    // Another model saved under the same name, then the first model's sidecar back: the
    // state a save interrupted between the two renames leaves.
    let mut other = MultiLayerPerceptron::<f32>::from_sizes(
        &[784, 16, 10],
        ActivationKind::Sigmoid,
        Init::Uniform,
        4,
    )
    .unwrap();
    other.layers_mut()[0].as_linear_mut().unwrap().weights_mut()[[0, 0]] = 1.0;
    checkpoint::save(&other, &path).unwrap();
    std::fs::write(dir.path().join("m.json"), sidecar).unwrap();
    assert_refused(
        &["eval", "--model", &text(&path)],
        "belongs to another version of this file",
    );
}

/// Old or new, never a mix: a save killed at spread-out moments leaves, under the final
/// name, the model that was there before or the new one, exactly.
#[test]
fn a_save_killed_at_any_moment_leaves_the_old_model_or_the_new() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["m.safetensors", "m.npz"] {
        let target = dir.path().join(name);
        let run = |seed: &str, path: &Path| {
            let mut command = Process::new(binary());
            command
                .current_dir(manifest())
                .args([
                    "train",
                    "--train-rows",
                    "100",
                    "--test-rows",
                    "10",
                    "--epochs",
                    "1",
                    "--quiet",
                ])
                .args([
                    "--hidden",
                    "2048,2048",
                    "--seed",
                    seed,
                    "--threads",
                    "2",
                    "--save",
                ])
                .arg(path)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            command
        };
        // The two possible contents: the old model (seed 1) and the new one (seed 2).
        let (old, new) = (
            dir.path().join(format!("old-{name}")),
            dir.path().join(format!("new-{name}")),
        );
        assert!(run("1", &old).status().unwrap().success());
        let started = Instant::now();
        assert!(run("2", &new).status().unwrap().success());
        let duration = started.elapsed();
        let weights = |path: &Path| {
            checkpoint::load::<f32>(path).map(|m| {
                m.linear_layers()
                    .map(|l| l.weights().to_owned())
                    .collect::<Vec<_>>()
            })
        };
        let (old_weights, new_weights) = (weights(&old).unwrap(), weights(&new).unwrap());
        let mut outcomes = [0usize; 3];
        for step in 0..16 {
            let format = checkpoint::ModelFormat::of(&target).unwrap();
            for (source, file) in format.files(&old).into_iter().zip(format.files(&target)) {
                std::fs::copy(source, file).unwrap();
            }
            let mut child = run("2", &target).spawn().unwrap();
            std::thread::sleep(duration.mul_f64(0.5 + 0.6 * step as f64 / 16.0));
            let _ = child.kill();
            child.wait().unwrap();
            match weights(&target) {
                Ok(found) if found == old_weights => outcomes[0] += 1,
                Ok(found) if found == new_weights => outcomes[1] += 1,
                Ok(_) => panic!("{name}, kill {step}: a model that is neither the old nor the new"),
                // Two files: a kill between the renames is detected, never loaded.
                Err(error) => {
                    assert!(name.ends_with(".npz"), "{name}, kill {step}: {error}");
                    assert!(
                        error.to_string().contains("belongs to another version"),
                        "{error}"
                    );
                    outcomes[2] += 1;
                }
            }
        }
        assert!(
            outcomes[0] + outcomes[1] + outcomes[2] == 16,
            "{name}: {outcomes:?}"
        );
        println!(
            "{name}: old {} new {} detected mismatch {}",
            outcomes[0], outcomes[1], outcomes[2]
        );
    }
}

#[test]
fn ctrl_c_saves_the_model_and_the_partial_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (log, model) = (dir.path().join("log.csv"), dir.path().join("m.safetensors"));
    let mut child = Process::new(binary())
        .current_dir(manifest())
        .args([
            "train",
            "--dataset",
            "mnist",
            "--activation",
            "relu",
            "--epochs",
            "100",
            "--threads",
            "2",
        ])
        .arg("--log")
        .arg(&log)
        .arg("--save")
        .arg(&model)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first epoch line, then a little into the second epoch.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("epoch") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the run ended early"
        );
    }
    std::thread::sleep(Duration::from_millis(150));
    let status = Process::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.starts_with("nabla: interrupted ")
            && stderr.contains(&format!("saved {}", model.display())),
        "{stderr}"
    );
    // The log has every finished epoch, then the interrupted one marked partial (unless
    // the signal fell between epochs); the model loads.
    let epochs = column(&log, "epoch");
    let partial = column(&log, "partial");
    assert!(!epochs.is_empty());
    assert!(partial[..partial.len() - 1].iter().all(|p| p == "false"));
    if stderr.contains("after batch") {
        assert_eq!(partial.last().unwrap(), "true", "{stderr}");
        assert!(rest.contains("(partial: "), "{rest}");
    }
    let loaded = checkpoint::load::<f32>(&model).unwrap();
    assert_eq!(loaded.in_features(), 784);
    assert!(!dir.path().join("m.safetensors.tmp").exists());
}

#[test]
fn stdout_to_a_full_disk_is_an_error() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = Process::new(binary())
        .current_dir(manifest())
        .args([
            "train",
            "--train-rows",
            "100",
            "--test-rows",
            "10",
            "--epochs",
            "1",
            "--hidden",
            "8",
        ])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("nabla: error: cannot write to stdout"),
        "{stderr}"
    );
}
