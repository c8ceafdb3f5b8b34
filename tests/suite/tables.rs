// Tables as users have them (issue 20): headers, text labels and categories, missing
// values, other delimiters and formats, a test split, regression; the preprocessing kept
// in the model and applied by `eval` and `predict`; and one clear error for each way a
// table can be wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `nabla SUBCOMMAND` in `dir`, two threads.
fn nabla(dir: &Path, subcommand: &str) -> Command {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("nabla"));
    command.current_dir(dir).arg(subcommand);
    command
}

/// `nabla train` in `dir` with small, quick settings that learn these tables (40
/// epochs; [`train_for`] for another count).
fn train(dir: &Path) -> Command {
    train_for(dir, 40)
}

/// [`train`] for `epochs` epochs.
fn train_for(dir: &Path, epochs: usize) -> Command {
    let mut command = nabla(dir, "train");
    command.args(["--epochs", &epochs.to_string()]);
    command.args([
        "--hidden",
        "16",
        "--activation",
        "relu",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "32",
        "--threads",
        "1",
        "--quiet",
    ]);
    command
}

/// Runs `command`, which must succeed; its stdout.
#[track_caller]
fn ok(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `command`, which must be refused with exit status 2 and one `nabla: error:`
/// line holding every one of `parts`; that line.
#[track_caller]
fn refused(command: &mut Command, parts: &[&str]) -> String {
    let output: Output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("nabla: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    for part in parts {
        assert!(errors[0].contains(part), "{part:?} missing from: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0].to_string()
}

/// `nabla train` on `dir/name` (holding `bytes`) with half held out, which must be
/// refused naming each of `parts`.
#[track_caller]
fn refused_file(dir: &Path, name: &str, bytes: &[u8], parts: &[&str]) {
    std::fs::write(dir.join(name), bytes).unwrap();
    refused(
        train(dir).args(["--train-file", name, "--test-split", "0.5"]),
        parts,
    );
}

/// A small deterministic pseudo-random number in [0, 1) from `i` and `salt`.
fn noise(i: usize, salt: usize) -> f64 {
    let mut x =
        (i as u64 + 1).wrapping_mul(6364136223846793005) ^ (salt as u64 * 1442695040888963407);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The flags that train on `penguins.csv` ([`penguins`]): its label, its ID ignored, a
/// quarter held out.
const PENGUINS: [&str; 8] = [
    "--train-file",
    "penguins.csv",
    "--test-split",
    "0.25",
    "--label",
    "species",
    "--ignore",
    "id",
];

const SPECIES: [&str; 3] = ["Adelie", "Chinstrap", "Gentoo"];
const ISLANDS: [&str; 3] = ["Biscoe", "Dream", "Torgersen"];

/// A penguin-like table of `rows` rows: the label first (`species`, text), an ID column,
/// two numeric columns that separate the classes (one with `NA`s), a text category and a
/// sex column with empty (missing) values.
fn penguins(rows: usize) -> String {
    let mut text = String::from("species,id,bill_length_mm,flipper_length_mm,island,sex\n");
    for i in 0..rows {
        let class = i % 3;
        let bill = 38.0 + 5.0 * class as f64 + 2.0 * noise(i, 1);
        let flipper = 190.0 + 12.0 * class as f64 + 6.0 * noise(i, 2);
        let bill = if i % 23 == 5 {
            "NA".to_string()
        } else {
            format!("{bill:.1}")
        };
        let island = ISLANDS[(class + usize::from(noise(i, 3) < 0.3)) % 3];
        let sex = match i % 17 {
            0 => "",
            n if n % 2 == 0 => "male",
            _ => "female",
        };
        text.push_str(&format!(
            "{},P{i:04},{bill},{flipper:.1},{island},{sex}\n",
            SPECIES[class]
        ));
    }
    text
}

/// `text` written to `dir/name`; the path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The JSON of `dir/summary.json`.
fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_table_with_a_header_text_labels_and_categories_trains_and_predicts_names() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "penguins.csv", &penguins(300));
    let stdout = ok(train(dir.path()).args(PENGUINS).args(["--out", "run"]));
    assert!(stdout.contains("final:"), "{stdout}");
    let summary = summary(&dir.path().join("run"));
    let accuracy = summary["final"]["test"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.95, "test accuracy {accuracy}");
    // New rows, columns in another order, no label, one unseen island.
    write(
        dir.path(),
        "new.csv",
        "sex,island,flipper_length_mm,bill_length_mm,id\n\
         male,Dream,190.5,38.5,X1\n\
         female,Biscoe,214.0,48.9,X2\n\
         ,Atlantis,202.1,43.2,X3\n",
    );
    let output = nabla(dir.path(), "predict")
        .args(["--model", "run", "--input", "new.csv"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let names: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(names, ["Adelie", "Gentoo", "Chinstrap"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning")
            && stderr.contains("'island'")
            && stderr.contains("1 value")
            && stderr.contains("Atlantis"),
        "{stderr}"
    );
    // --proba: one column per class name, rows summing to 1, the argmax the prediction.
    let proba =
        ok(nabla(dir.path(), "predict").args(["--model", "run", "--input", "new.csv", "--proba"]));
    let mut lines = proba.lines();
    assert_eq!(lines.next(), Some("Adelie,Chinstrap,Gentoo"));
    for (line, name) in lines.zip(&names) {
        let p: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{line}");
        let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(SPECIES[best], name);
    }
    // --output writes CSV with the label's name as header.
    ok(nabla(dir.path(), "predict")
        .args(["--model", "run", "--input", "new.csv", "-o", "out.csv"]));
    let written = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(written, "species\nAdelie\nGentoo\nChinstrap\n");
}

#[test]
fn eval_and_predict_apply_the_stored_preprocessing_as_training_did() {
    let dir = tempfile::tempdir().unwrap();
    let table = penguins(240);
    let (train_rows, test_rows): (Vec<&str>, Vec<&str>) = {
        let mut lines = table.lines();
        let header = lines.next().unwrap();
        let rows: Vec<&str> = lines.collect();
        let mut train = vec![header];
        let mut test = vec![header];
        for (i, row) in rows.into_iter().enumerate() {
            if i % 4 == 0 {
                test.push(row)
            } else {
                train.push(row)
            }
        }
        (train, test)
    };
    write(dir.path(), "train.csv", &(train_rows.join("\n") + "\n"));
    write(dir.path(), "test.csv", &(test_rows.join("\n") + "\n"));
    for dtype in ["f32", "f64"] {
        let out = format!("run-{dtype}");
        ok(train(dir.path()).args([
            "--train-file",
            "train.csv",
            "--test-file",
            "test.csv",
            "--label",
            "species",
            "--ignore",
            "id",
            "--dtype",
            dtype,
            "--out",
            &out,
        ]));
        let trained = summary(&dir.path().join(&out))["final"]["test"]["accuracy"]
            .as_f64()
            .unwrap();
        let eval: serde_json::Value = serde_json::from_str(&ok(nabla(dir.path(), "eval").args([
            "--model",
            &out,
            "--train-file",
            "train.csv",
            "--test-file",
            "test.csv",
            "--dtype",
            dtype,
            "--json",
        ])))
        .unwrap();
        assert_eq!(eval["classes"], serde_json::json!(SPECIES));
        assert_eq!(
            eval["test"]["accuracy"].as_f64().unwrap(),
            trained,
            "{dtype}"
        );
        // predict on the test file (its label column is allowed and ignored) gives the
        // predictions eval counted as correct.
        let predicted = ok(nabla(dir.path(), "predict")
            .args(["--model", &out, "--input", "test.csv", "--dtype", dtype]));
        let truth: Vec<&str> = test_rows[1..]
            .iter()
            .map(|row| row.split(',').next().unwrap())
            .collect();
        let correct = predicted
            .lines()
            .zip(&truth)
            .filter(|(p, t)| p == *t)
            .count();
        assert_eq!(
            correct as u64,
            eval["test"]["correct"].as_u64().unwrap(),
            "{dtype}"
        );
    }
}

#[test]
fn the_model_file_holds_the_preprocessing_in_its_metadata_and_only_weights_as_tensors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "penguins.csv", &penguins(120));
    ok(train_for(dir.path(), 2)
        .args(PENGUINS)
        .args(["--save", "m.safetensors"]));
    let bytes = std::fs::read(dir.path().join("m.safetensors")).unwrap();
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
    let tensors: Vec<&String> = header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .collect();
    assert_eq!(tensors, ["0.bias", "0.weight", "2.bias", "2.weight"]);
    let preprocessing: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["preprocessing"].as_str().unwrap()).unwrap();
    assert_eq!(preprocessing["label"], "species");
    assert_eq!(preprocessing["classes"], serde_json::json!(SPECIES));
    assert_eq!(preprocessing["ignored"], serde_json::json!(["id"]));
    let columns = preprocessing["columns"].as_array().unwrap();
    let names: Vec<&str> = columns
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["bill_length_mm", "flipper_length_mm", "island", "sex"]
    );
    assert_eq!(columns[0]["kind"], "numeric");
    assert!(columns[0]["fill"].as_f64().unwrap() > 38.0);
    assert_eq!(columns[2]["categories"], serde_json::json!(ISLANDS));
    // The missing sex is a category of its own, last.
    assert_eq!(
        columns[3]["categories"],
        serde_json::json!(["female", "male", null])
    );
    // The .npz sidecar carries the same.
    ok(train_for(dir.path(), 2)
        .args(PENGUINS)
        .args(["--save", "m.npz"]));
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("m.json")).unwrap()).unwrap();
    assert_eq!(sidecar["preprocessing"], preprocessing);
}

#[test]
fn a_numeric_target_trains_a_regression_reported_in_its_own_units() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = String::from("a,b,kind,price\n");
    for i in 0..400 {
        let (a, b) = (noise(i, 5) * 10.0, noise(i, 6) * 4.0);
        let kind = ["x", "y"][i % 2];
        let price =
            1000.0 + 30.0 * a - 50.0 * b + if i % 2 == 0 { 100.0 } else { 0.0 } + 5.0 * noise(i, 7);
        table.push_str(&format!("{a:.3},{b:.3},{kind},{price:.2}\n"));
    }
    write(dir.path(), "prices.csv", &table);
    // Without --task, fractional labels ask for it.
    refused(
        train(dir.path()).args(["--train-file", "prices.csv", "--test-split", "0.25"]),
        &["prices.csv:2", "column 'price'", "--task regression"],
    );
    let stdout = ok(train_for(dir.path(), 150)
        .args([
            "--train-file",
            "prices.csv",
            "--test-split",
            "0.25",
            "--task",
            "regression",
        ])
        .args(["--out", "run"])
        .arg("--no-restore-best"));
    assert!(stdout.contains("rmse") && stdout.contains("r2"), "{stdout}");
    let summary = summary(&dir.path().join("run"));
    let test = &summary["final"]["test"]["regression"];
    let r2 = test["r2"].as_f64().unwrap();
    assert!(r2 > 0.95, "R² {r2}");
    assert!(test["rmse"].as_f64().unwrap() < 40.0, "{test}");
    let log = std::fs::read_to_string(dir.path().join("run/log.csv")).unwrap();
    assert!(
        log.starts_with("epoch,partial,train_loss,train_r2,train_rmse,"),
        "{log}"
    );
    assert!(log
        .lines()
        .next()
        .unwrap()
        .ends_with(",train_mae,val_rmse,val_mae,test_mae"));
    // eval reports the same R²; predict prints prices (the target's units).
    let eval: serde_json::Value = serde_json::from_str(&ok(nabla(dir.path(), "eval").args([
        "--model",
        "run",
        "--train-file",
        "prices.csv",
        "--test-split",
        "0.25",
        "--json",
    ])))
    .unwrap();
    assert_eq!(eval["test"]["regression"]["r2"].as_f64().unwrap(), r2);
    write(dir.path(), "new.csv", "kind,b,a\ny,1.0,5.0\nx,2.0,1.0\n");
    let prices: Vec<f64> =
        ok(nabla(dir.path(), "predict").args(["--model", "run", "--input", "new.csv"]))
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
    assert!((prices[0] - 1100.0).abs() < 40.0, "{prices:?}");
    assert!((prices[1] - 1030.0).abs() < 40.0, "{prices:?}");
    refused(
        nabla(dir.path(), "predict").args(["--model", "run", "--input", "new.csv", "--proba"]),
        &["--proba", "predicts numbers"],
    );
    // plot draws R², summarize puts it in the score columns.
    ok(nabla(dir.path(), "plot").args(["run", "-o", "curves.svg"]));
    let svg = std::fs::read_to_string(dir.path().join("curves.svg")).unwrap();
    assert!(svg.contains("R²"));
    let table = ok(nabla(dir.path(), "summarize").arg("run"));
    assert!(table.contains(&format!("{r2:.6}")), "{table}");
}

#[test]
fn other_delimiters_formats_and_quoting_read_the_same_table() {
    let dir = tempfile::tempdir().unwrap();
    let csv = penguins(90);
    write(dir.path(), "p.csv", &csv);
    write(dir.path(), "p.tsv", &csv.replace(',', "\t"));
    // Semicolons, CRLF line ends, quoted fields (one with a comma and a line end inside).
    let quoted = csv
        .replace(',', ";")
        .replace("Dream", "\"Dream, the island\"")
        .replace("Biscoe", "\"Bis\ncoe\"")
        .replace('\n', "\r\n");
    write(dir.path(), "p.txt", &quoted);
    let gz = {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(csv.as_bytes()).unwrap();
        encoder.finish().unwrap()
    };
    std::fs::write(dir.path().join("p.csv.gz"), gz).unwrap();
    let describe = |name: &str| ok(nabla(dir.path(), "inspect").arg(name));
    let reference = describe("p.csv");
    assert!(
        reference.contains("90 rows, 6 columns, header row"),
        "{reference}"
    );
    assert!(reference.contains("bill_length_mm"), "{reference}");
    assert!(
        reference.contains("id ") && reference.contains("(an ID?)"),
        "{reference}"
    );
    for other in ["p.tsv", "p.csv.gz"] {
        let text = describe(other);
        // The same columns, kinds, missing counts and values (only the first line differs).
        assert_eq!(
            text.lines().skip(1).collect::<Vec<_>>(),
            reference.lines().skip(1).collect::<Vec<_>>(),
            "{other}"
        );
    }
    let text = describe("p.txt");
    assert!(text.contains("90 rows, 6 columns"), "{text}");
    assert!(
        text.contains("Dream, the island") && text.contains("Bis\\r\\ncoe"),
        "{text}"
    );
    // --header no makes the header a row: the columns get names and the numbers text.
    let text = ok(nabla(dir.path(), "inspect").args(["p.csv", "--header", "no"]));
    assert!(
        text.contains("91 rows") && text.contains("column1"),
        "{text}"
    );
    // A forced delimiter that is wrong gives one column.
    let text = ok(nabla(dir.path(), "inspect").args(["p.csv", "--delimiter", "tab"]));
    assert!(text.contains("1 columns"), "{text}");
}

#[test]
fn numpy_files_are_tables_too() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 120;
    let x = ndarray::Array2::from_shape_fn((rows, 2), |(i, j)| {
        (i % 2) as f64 * 3.0 + j as f64 + noise(i, j)
    });
    let y = ndarray::Array1::from_shape_fn(rows, |i| (i % 2) as i64);
    {
        let mut npz =
            ndarray_npy::NpzWriter::new(std::fs::File::create(dir.path().join("d.npz")).unwrap());
        npz.add_array("X", &x).unwrap();
        npz.add_array("y", &y).unwrap();
        npz.finish().unwrap();
    }
    let mut both = ndarray::Array2::<f32>::zeros((rows, 3));
    for i in 0..rows {
        both[[i, 0]] = x[[i, 0]] as f32;
        both[[i, 1]] = x[[i, 1]] as f32;
        both[[i, 2]] = y[i] as f32;
    }
    ndarray_npy::write_npy(dir.path().join("d.npy"), &both).unwrap();
    for file in ["d.npz", "d.npy"] {
        let out = format!("run-{file}");
        ok(train(dir.path()).args(["--train-file", file, "--test-split", "0.25", "--out", &out]));
        let accuracy = summary(&dir.path().join(&out))["final"]["test"]["accuracy"]
            .as_f64()
            .unwrap();
        assert!(accuracy > 0.95, "{file}: {accuracy}");
    }
    let text = ok(nabla(dir.path(), "inspect").arg("d.npz"));
    assert!(
        text.contains("120 rows, 3 columns") && text.contains("x1") && text.contains("y "),
        "{text}"
    );
    // A header that claims more values than the file holds is refused before allocating.
    let bytes = std::fs::read(dir.path().join("d.npy")).unwrap();
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap();
    // The same header length: the longer shape takes the place of padding spaces.
    let header = String::from_utf8(bytes[10..header_end].to_vec()).unwrap();
    let forged_header = header.replace("(120, 3)", "(9999999999, 3)");
    let forged_header = forged_header[..header.len()].to_string();
    assert!(forged_header.contains("9999999999"), "{forged_header}");
    let mut forged = bytes[..10].to_vec();
    forged.extend_from_slice(forged_header.as_bytes());
    forged.extend_from_slice(&bytes[header_end..]);
    std::fs::write(dir.path().join("forged.npy"), forged).unwrap();
    refused(
        nabla(dir.path(), "inspect").arg("forged.npy"),
        &["forged.npy", "declares"],
    );
}

#[test]
fn each_way_a_table_can_be_wrong_is_one_error_naming_file_line_column_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = penguins(60);
    write(d, "good.csv", &good);
    let split = [
        "--test-split",
        "0.25",
        "--label",
        "species",
        "--ignore",
        "id",
    ];
    // Text in a numeric column.
    write(d, "text.csv", &good.replacen("190.", "19O.", 1));
    let line = good.lines().position(|l| l.contains(",190.")).unwrap() + 1;
    refused(
        train(d).arg("--train-file").arg("text.csv").args(split),
        &[
            &format!("text.csv:{line}"),
            "column 'flipper_length_mm'",
            "'19O.",
            "numeric column",
            "--categorical",
        ],
    );
    // A column with no values.
    let mut empty = String::from("a,b,label\n");
    for i in 0..20 {
        empty.push_str(&format!("{i},NA,{}\n", ["u", "v"][i % 2]));
    }
    write(d, "empty.csv", &empty);
    refused(
        train(d).args(["--train-file", "empty.csv", "--test-split", "0.25"]),
        &["empty.csv", "column 'b'", "every value is missing"],
    );
    // One class.
    refused_file(
        d,
        "one.csv",
        "a,label\n1,u\n2,u\n3,u\n4,u\n".as_bytes(),
        &["one.csv", "column 'label'", "one class ('u')"],
    );
    // A test file without a training column.
    let lacking: String = good
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    write(d, "lacking.csv", &lacking);
    refused(
        train(d).args([
            "--train-file",
            "good.csv",
            "--test-file",
            "lacking.csv",
            "--label",
            "species",
            "--ignore",
            "id",
        ]),
        &["lacking.csv", "column 'sex'", "needs this column"],
    );
    // A label the model does not know, in the test file.
    write(d, "unknown.csv", &good.replacen("Gentoo", "Emperor", 1));
    let line = good.lines().position(|l| l.starts_with("Gentoo")).unwrap() + 1;
    refused(
        train(d).args([
            "--train-file",
            "good.csv",
            "--test-file",
            "unknown.csv",
            "--label",
            "species",
            "--ignore",
            "id",
        ]),
        &[
            &format!("unknown.csv:{line}"),
            "column 'species'",
            "'Emperor'",
            "not one of the classes",
        ],
    );
    // --impute none refuses a missing number, with its line.
    let line = good.lines().position(|l| l.contains(",NA,")).unwrap() + 1;
    refused(
        train(d)
            .arg("--train-file")
            .arg("good.csv")
            .args(split)
            .args(["--impute", "none"]),
        &[
            &format!("good.csv:{line}"),
            "column 'bill_length_mm'",
            "is missing",
            "--impute",
        ],
    );
    // A ragged row, two columns of one name, a missing label, an unknown --label.
    write(d, "ragged.csv", &(good.clone() + "Adelie,P9,1.0\n"));
    refused(
        train(d).arg("--train-file").arg("ragged.csv").args(split),
        &["ragged.csv:62", "expected 6 columns", "found 3"],
    );
    refused_file(
        d,
        "twice.csv",
        "a,a,label\n1,2,u\n3,4,v\n".as_bytes(),
        &["twice.csv", "named 'a'"],
    );
    refused_file(
        d,
        "nolabel.csv",
        "a,label\n1,u\n2,\n3,v\n4,u\n".as_bytes(),
        &["nolabel.csv:3", "column 'label'", "missing label"],
    );
    refused(
        train(d).args([
            "--train-file",
            "good.csv",
            "--test-split",
            "0.25",
            "--label",
            "kind",
        ]),
        &["--label kind", "no such column", "species"],
    );
    refused(
        train(d).args([
            "--train-file",
            "good.csv",
            "--test-split",
            "0.25",
            "--ignore",
            "nope",
        ]),
        &["--ignore nope", "no such column"],
    );
    // A file alone, and table flags without a table.
    refused(
        train(d).args(["--train-file", "good.csv"]),
        &["--train-file", "--test-split"],
    );
    refused(
        train(d).args(["--label", "species"]),
        &["--label", "--train-file"],
    );
    refused(
        train(d).args(["--train-file", "good.csv", "--test-split", "1.5"]),
        &["--test-split", "1.5"],
    );
    refused(
        train(d).args([
            "--train-file",
            "good.csv",
            "--test-split",
            "0.2",
            "--delimiter",
            "ab",
        ]),
        &["--delimiter", "'ab'"],
    );
    // At predict: a missing column, an extra one.
    ok(train_for(d, 2)
        .arg("--train-file")
        .arg("good.csv")
        .args(split)
        .args(["--save", "m.safetensors"]));
    refused(
        nabla(d, "predict").args(["--model", "m.safetensors", "--input", "lacking.csv"]),
        &["lacking.csv", "column 'sex'", "needs this column"],
    );
    let extra: String = good
        .lines()
        .map(|l| format!("{l},1\n"))
        .collect::<String>()
        .replacen(",1\n", ",weight\n", 1);
    write(d, "extra.csv", &extra);
    refused(
        nabla(d, "predict").args(["--model", "m.safetensors", "--input", "extra.csv"]),
        &[
            "extra.csv",
            "column 'weight'",
            "not trained with this column",
        ],
    );
}

#[test]
fn an_id_like_column_is_a_warning_that_suggests_ignore() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "penguins.csv", &penguins(90));
    let output = train_for(dir.path(), 1)
        .args([
            "--train-file",
            "penguins.csv",
            "--test-split",
            "0.25",
            "--label",
            "species",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: column 'id'") && stderr.contains("--ignore id"),
        "{stderr}"
    );
}

#[test]
fn a_table_run_resumes_exactly_and_a_sweep_runs_over_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "penguins.csv", &penguins(150));
    let data = PENGUINS;
    ok(train_for(d, 12).args(data).args(["--out", "whole"]));
    ok(train_for(d, 5).args(data).args(["--out", "part"]));
    ok(nabla(d, "train").args(["--resume", "part", "--epochs", "12", "--quiet"]));
    for file in ["log.csv", "model.safetensors"] {
        let read = |run: &str| std::fs::read(d.join(run).join(file)).unwrap();
        if file == "log.csv" {
            // The same numbers (a row keeps the --epochs it was logged under, and its
            // seconds differ).
            let numbers = |bytes: Vec<u8>| -> Vec<String> {
                String::from_utf8(bytes)
                    .unwrap()
                    .lines()
                    .map(|l| l.split(',').take(11).collect::<Vec<_>>().join(","))
                    .collect()
            };
            assert_eq!(numbers(read("whole")), numbers(read("part")));
        } else {
            assert_eq!(read("whole"), read("part"), "{file}");
        }
    }
    // A sweep over the table: every point trains on it and is ranked.
    let sweep = ok(nabla(d, "sweep").args([
        "--hidden",
        "4 8",
        "--lr",
        "0.01",
        "--optimizer",
        "adam",
        "--epochs",
        "3",
        "--jobs",
        "1",
        "--out",
        "sweep",
        "--extra",
        "--train-file penguins.csv --test-split 0.25 --label species --ignore id",
    ]));
    let results = std::fs::read_to_string(d.join("sweep/results.csv")).unwrap();
    assert_eq!(results.lines().count(), 3, "{sweep}\n{results}");
    assert!(results.contains("penguins.csv"), "{results}");
}

#[test]
fn what_a_hostile_pass_found_is_refused_by_name_or_read_right() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "penguins.csv", &penguins(90));
    let data = PENGUINS;
    ok(train_for(d, 2).args(data).args(["--save", "m.safetensors"]));
    // predict -o may not replace the model it reads.
    let model = std::fs::read(d.join("m.safetensors")).unwrap();
    refused(
        nabla(d, "predict").args([
            "--model",
            "m.safetensors",
            "--input",
            "penguins.csv",
            "-o",
            "m.safetensors",
        ]),
        &["m.safetensors"],
    );
    assert_eq!(std::fs::read(d.join("m.safetensors")).unwrap(), model);
    // Integer labels past 2^53 would merge as numbers: refused.
    refused_file(d, "big.csv", "x,y\n0.1,12345678901234567\n0.9,12345678901234568\n0.2,12345678901234567\n0.8,12345678901234568\n".as_bytes(), &["big.csv:", "column 'y'", "2^53"]);
    // Numbers as column names: a header all the same (csv.Sniffer's vote).
    write(
        d,
        "years.csv",
        "country,2019,2020,2021\nFR,59.3,13.0,1\nDE,41.2,22.5,0\nIT,50.1,17.0,1\nES,48.3,19.5,0\n",
    );
    assert!(ok(nabla(d, "inspect").arg("years.csv")).contains("4 rows, 4 columns, header row"));
    // UTF-16, Latin-1 and decimal commas are named, not read as garbage.
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain("a,y\n1,u\n2,v\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    refused_file(d, "u16.csv", &utf16, &["u16.csv", "UTF-16"]);
    refused_file(
        d,
        "latin1.csv",
        b"a,city,y\n1,Z\xfcrich,u\n2,Z\xe4rich,v\n3,Bern,u\n4,Bern,v\n",
        &["latin1.csv", "column 'city'", "not UTF-8"],
    );
    refused_file(
        d,
        "commas.csv",
        "a;b;y\n-1,57;-0,26;0\n1,2;0,5;1\n-0,3;2,2;0\n1,1;0,1;1\n".as_bytes(),
        &["commas.csv", "column 'a'", "decimal commas", "'-1,57'"],
    );
    // Values that overflow: at fitting, and in f32 at predict.
    refused_file(
        d,
        "huge.csv",
        "x,y\n1e160,a\n2,b\n3,a\n4,b\n".as_bytes(),
        &["huge.csv", "column 'x'", "overflow", "1e160"],
    );
    write(
        d,
        "new.csv",
        "island,bill_length_mm,flipper_length_mm,sex\nDream,1e60,190,male\n",
    );
    refused(
        nabla(d, "predict").args(["--model", "m.safetensors", "--input", "new.csv"]),
        &[
            "new.csv:2",
            "column 'bill_length_mm'",
            "'1e60'",
            "too large for f32",
        ],
    );
    ok(nabla(d, "predict").args([
        "--model",
        "m.safetensors",
        "--input",
        "new.csv",
        "--dtype",
        "f64",
    ]));
    // The label may not be ignored; one column found names the delimiter.
    let mut ignoring_the_label = PENGUINS;
    ignoring_the_label[7] = "species";
    refused(
        train(d).args(ignoring_the_label),
        &["--ignore species", "label column"],
    );
    refused(
        train(d).args([
            "--train-file",
            "penguins.csv",
            "--test-split",
            "0.25",
            "--delimiter",
            ";",
        ]),
        &["penguins.csv", "one column", "--delimiter"],
    );
    // A model trained on a headerless table, its label in the middle, predicts from the
    // other columns.
    let rows: String = (0..60)
        .map(|i| {
            format!(
                "{},{},{},{}\n",
                i % 2 * 3,
                ["u", "v"][i % 2],
                noise(i, 1),
                noise(i, 2)
            )
        })
        .collect();
    write(d, "headerless.csv", &rows);
    ok(train_for(d, 30).args([
        "--train-file",
        "headerless.csv",
        "--test-split",
        "0.25",
        "--label",
        "1",
        "--save",
        "h.safetensors",
    ]));
    write(d, "features.csv", "0,0.5,0.5\n3,0.5,0.5\n");
    assert_eq!(
        ok(nabla(d, "predict").args(["--model", "h.safetensors", "--input", "features.csv"])),
        "u\nv\n"
    );
}

#[test]
fn parquet_reads_as_the_same_table_as_its_csv() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["penguins.csv", "penguins.parquet"] {
        std::fs::copy(fixtures.join(name), d.join(name)).unwrap();
    }
    let describe = |name: &str| -> Vec<String> {
        ok(nabla(d, "inspect").arg(name))
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(describe("penguins.parquet"), describe("penguins.csv"));
    // The same data, so the same model, byte for byte (its metadata names no file).
    for name in ["penguins.csv", "penguins.parquet"] {
        ok(train_for(d, 5)
            .args([
                "--train-file",
                name,
                "--test-split",
                "0.25",
                "--label",
                "species",
                "--ignore",
                "id",
            ])
            .args(["--save", &format!("{name}.safetensors")]));
    }
    assert_eq!(
        std::fs::read(d.join("penguins.csv.safetensors")).unwrap(),
        std::fs::read(d.join("penguins.parquet.safetensors")).unwrap()
    );
    // And a Parquet file is a prediction input too.
    let names = ok(nabla(d, "predict").args([
        "--model",
        "penguins.csv.safetensors",
        "--input",
        "penguins.parquet",
    ]));
    assert_eq!(names.lines().count(), 344);
}

#[test]
fn what_a_second_hostile_pass_found_is_refused_by_name_or_read_right() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "penguins.csv", &penguins(90));
    let data = PENGUINS;
    ok(train_for(d, 2)
        .args(data)
        .args(["--out", "run", "--checkpoint-every", "1"]));
    // A model file whose preprocessing no longer fits its layers is refused, not a panic.
    let bytes = std::fs::read(d.join("run/model.safetensors")).unwrap();
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
    let mut preprocessing: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["preprocessing"].as_str().unwrap()).unwrap();
    preprocessing["classes"] = serde_json::json!(["Adelie"]);
    header["__metadata__"]["preprocessing"] = preprocessing.to_string().into();
    let text = header.to_string();
    let mut edited = (text.len() as u64).to_le_bytes().to_vec();
    edited.extend_from_slice(text.as_bytes());
    edited.extend_from_slice(&bytes[8 + length..]);
    std::fs::write(d.join("edited.safetensors"), edited).unwrap();
    refused(
        nabla(d, "predict").args(["--model", "edited.safetensors", "--input", "penguins.csv"]),
        &[
            "edited.safetensors",
            "inconsistent",
            "1 classes",
            "3 outputs",
        ],
    );
    // A training checkpoint serves as a model: it carries the run's preprocessing.
    let from_checkpoint = ok(nabla(d, "predict").args([
        "--model",
        "run/checkpoint.safetensors",
        "--input",
        "penguins.csv",
    ]));
    assert_eq!(from_checkpoint.lines().count(), 90);
    // Regression: a target that overflows is refused; --train-rows limits the fit.
    let mut table = String::from("x,y\n");
    for i in 0..40 {
        table.push_str(&format!(
            "{i},{}\n",
            if i % 2 == 0 { 1e308 } else { i as f64 }
        ));
    }
    write(d, "huge.csv", &table);
    refused(
        train(d).args([
            "--train-file",
            "huge.csv",
            "--test-split",
            "0.25",
            "--task",
            "regression",
        ]),
        &["regression targets", "overflow"],
    );
    let mut table = String::from("x,y\n");
    for i in 0..40 {
        table.push_str(&format!("{i},{}\n", 100 * i));
    }
    write(d, "line.csv", &table);
    let verbose = nabla(d, "train")
        .args([
            "--train-file",
            "line.csv",
            "--test-file",
            "line.csv",
            "--task",
            "regression",
            "--train-rows",
            "10",
            "--epochs",
            "1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&verbose.stdout);
    assert!(
        stdout.contains("standardised with mean 450.000000"),
        "{stdout}"
    );
    // plot --model draws a classifier's confusion matrix; a regression model is refused.
    ok(train_for(d, 1).args([
        "--train-file",
        "line.csv",
        "--test-split",
        "0.25",
        "--task",
        "regression",
        "--save",
        "r.safetensors",
    ]));
    refused(
        nabla(d, "plot").args([
            "--model",
            "r.safetensors",
            "--train-file",
            "line.csv",
            "--test-split",
            "0.25",
            "-o",
            "c.svg",
        ]),
        &["--model", "predicts numbers"],
    );
    // Categories match however a number is written (3 and 3.0).
    let rows: String = (0..60)
        .map(|i| format!("{},{}\n", i % 3 + 1, ["u", "v", "w"][i % 3]))
        .collect();
    write(d, "codes.csv", &format!("code,label\n{rows}"));
    ok(train_for(d, 60).args([
        "--train-file",
        "codes.csv",
        "--test-split",
        "0.25",
        "--categorical",
        "code",
        "--save",
        "c.safetensors",
    ]));
    write(d, "floats.csv", "code\n1.0\n3.0\n");
    let output = nabla(d, "predict")
        .args(["--model", "c.safetensors", "--input", "floats.csv"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "u\nw\n");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("not seen"),
        "{output:?}"
    );
}

#[test]
fn parquet_columns_named_categorical_are_categories() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = ok(nabla(&fixtures, "inspect").args(["penguins.parquet", "--categorical", "year"]));
    let year = text.lines().find(|l| l.starts_with("year")).unwrap();
    assert!(
        year.contains("text") && year.contains("3 categories"),
        "{year}"
    );
}
