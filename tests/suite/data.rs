//! The bundled data and the loaders, including every kind of bad input.

use std::io::Write;
use std::path::{Path, PathBuf};

use nabla::data::{self, DataError, DataSource, Dataset, Features};
use sha2::{Digest, Sha256};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

#[test]
fn data_files_match_their_recorded_hashes() {
    let readme = std::fs::read_to_string(data_dir().join("README.md")).unwrap();
    let recorded: Vec<(&str, &str)> = readme
        .lines()
        .filter_map(|line| line.split_once("  "))
        .filter(|(hash, _)| hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    assert_eq!(
        recorded.len(),
        10,
        "data/README.md should record 6 + 4 hashes"
    );
    for (hash, file) in recorded {
        let path = data_dir().join(file);
        // A name without `.gz` is the decompressed contents of NAME.gz.
        let bytes = if path.exists() {
            std::fs::read(&path).unwrap()
        } else {
            let mut contents = Vec::new();
            let compressed = std::fs::File::open(path.with_extension("gz")).unwrap();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(compressed),
                &mut contents,
            )
            .unwrap();
            contents
        };
        let actual: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(actual, hash, "{file}: SHA-256 differs from data/README.md");
    }
}

#[test]
fn regenerating_the_subset_gives_identical_bytes() {
    let out = tempfile::tempdir().unwrap();
    let written =
        data::write_mnist_subset(&data_dir().join("mnist"), out.path(), 3000, 1000).unwrap();
    for path in written {
        let name = path.file_name().unwrap();
        let bundled = std::fs::read(data_dir().join("mnist-subset").join(name)).unwrap();
        assert!(
            std::fs::read(&path).unwrap() == bundled,
            "{name:?} differs from the bundled file"
        );
    }
}

#[test]
fn subset_is_the_head_of_mnist() {
    let subset: Dataset<f32> = data::mnist_subset(&data_dir().join("mnist-subset")).unwrap();
    let mnist: Dataset<f32> = data::mnist(&data_dir().join("mnist")).unwrap();
    assert_eq!(
        (subset.train_x.nrows(), subset.train_x.ncols()),
        (3000, 784)
    );
    assert_eq!((subset.test_x.nrows(), subset.test_x.ncols()), (1000, 784));
    assert_eq!(
        (mnist.train_x.nrows(), mnist.test_x.nrows()),
        (60000, 10000)
    );
    assert!(
        matches!(mnist.train_x, Features::Pixels(_)),
        "IDX pixels stay compact"
    );
    let head = mnist.head(3000, 1000);
    assert_eq!(subset.train_y, head.train_y);
    assert_eq!(subset.test_y, head.test_y);
    // The CSV holds value/255 as decimals; parsed to f32 they equal the pixel / 255.
    assert_eq!(subset.train_x.to_dense(), head.train_x.to_dense());
    assert_eq!(subset.test_x.to_dense(), head.test_x.to_dense());
    assert!(mnist.train_y.iter().all(|&label| label < 10));
}

/// Writes `contents` to a file named `name` in a new temporary directory.
fn write_temp(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn csv_error(contents: &str) -> (DataError, String) {
    let (_dir, path) = write_temp("bad.csv", contents.as_bytes());
    let error = data::load_csv::<f64>(&path, 10).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("bad.csv"),
        "error does not name the file: {message}"
    );
    (error, message)
}

#[test]
fn csv_loads_plain_and_gzip() {
    let text = "0.5,1,2\n0,0.25,9\n";
    let (_dir, plain) = write_temp("a.csv", text.as_bytes());
    let (_dir2, packed) = write_temp("a.csv.gz", &gzip(text.as_bytes()));
    for path in [plain, packed] {
        let (x, y) = data::load_csv::<f64>(&path, 10).unwrap();
        assert_eq!(x, ndarray::array![[0.5, 1.0], [0.0, 0.25]]);
        assert_eq!(y.to_vec(), vec![2, 9]);
    }
}

#[test]
fn csv_missing_file() {
    let error = data::load_csv::<f64>(Path::new("/nonexistent/train.csv"), 10).unwrap_err();
    assert!(matches!(error, DataError::Io { .. }));
    assert!(
        error.to_string().contains("/nonexistent/train.csv"),
        "{error}"
    );
}

#[test]
fn csv_empty_file() {
    let (error, _) = csv_error("");
    assert!(matches!(error, DataError::Empty { .. }), "{error}");
    let (_dir, path) = write_temp("empty.csv.gz", &gzip(b""));
    assert!(matches!(
        data::load_csv::<f64>(&path, 10).unwrap_err(),
        DataError::Empty { .. }
    ));
}

#[test]
fn csv_corrupt_gzip() {
    let mut bytes = gzip("0.5,1,2\n".repeat(1000).as_bytes());
    let middle = bytes.len() / 2;
    bytes.truncate(middle);
    let (_dir, path) = write_temp("broken.csv.gz", &bytes);
    let error = data::load_csv::<f64>(&path, 10).unwrap_err();
    assert!(matches!(error, DataError::CorruptGzip { .. }), "{error}");
    assert!(error.to_string().contains("broken.csv.gz"));
}

#[test]
fn csv_ragged_row() {
    let (error, message) = csv_error("1,2,3\n4,5,6\n7,8\n");
    assert!(
        matches!(
            error,
            DataError::RaggedRow {
                line: 3,
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(message.contains(":3:"), "{message}");
}

#[test]
fn csv_field_not_a_number() {
    let (error, message) = csv_error("1,2,3\n4,abc,6\n");
    assert!(
        matches!(
            error,
            DataError::NotANumber {
                line: 2,
                column: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        message.contains(":2:2:") && message.contains("abc"),
        "{message}"
    );
}

#[test]
fn csv_non_finite_values() {
    for bad in ["NaN", "inf", "-inf"] {
        let (error, _) = csv_error(&format!("1,2,3\n4,5,6\n0,{bad},1\n"));
        assert!(
            matches!(
                error,
                DataError::NonFinite {
                    line: 3,
                    column: 2,
                    ..
                }
            ),
            "{bad}: {error}"
        );
    }
}

#[test]
fn csv_bad_labels() {
    let (error, _) = csv_error("1,2,3\n4,5,2.5\n");
    assert!(
        matches!(
            error,
            DataError::LabelNotInteger {
                line: 2,
                column: 3,
                ..
            }
        ),
        "{error}"
    );
    let (error, _) = csv_error("1,2,-1\n");
    assert!(
        matches!(error, DataError::LabelNotInteger { .. }),
        "{error}"
    );
    let (error, message) = csv_error("1,2,3\n4,5,10\n");
    assert!(
        matches!(
            error,
            DataError::LabelOutOfRange {
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{error}"
    );
    assert!(message.contains(":2:3:"), "{message}");
    // A label written as an integral float is accepted.
    let (_dir, path) = write_temp("ok.csv", b"1,2,3.0\n");
    assert_eq!(
        data::load_csv::<f64>(&path, 10).unwrap().1.to_vec(),
        vec![3]
    );
}

#[test]
fn train_and_test_feature_counts_must_match() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), "1,2,3\n").unwrap();
    std::fs::write(dir.path().join("test.csv"), "1,2,3,4\n").unwrap();
    let error =
        Dataset::<f64>::load(&DataSource::Directory(dir.path().to_path_buf()), 10).unwrap_err();
    assert!(
        matches!(error, DataError::FeatureMismatch { train: 2, test: 3 }),
        "{error}"
    );
}

/// An IDX file: magic `00 00 type dims`, big-endian sizes, then `data`.
fn idx_bytes(element_type: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, element_type, dims.len() as u8];
    for dim in dims {
        bytes.extend_from_slice(&dim.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn idx_loads_images_and_labels() {
    let (_dir, images) = write_temp(
        "images.idx",
        &gzip(&idx_bytes(
            8,
            &[2, 2, 3],
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255],
        )),
    );
    let (_dir2, labels) = write_temp("labels.idx", &idx_bytes(8, &[2], &[7, 3]));
    let (pixels, y) = data::load_idx_pair(&images, &labels, 10).unwrap();
    assert_eq!(pixels.dim(), (2, 6));
    assert_eq!(pixels[[1, 5]], 255);
    assert_eq!(y.to_vec(), vec![7, 3]);
}

/// Whether an error is the one a case expects.
type ErrorCheck = fn(&DataError) -> bool;

#[test]
fn idx_errors() {
    let cases: Vec<(Vec<u8>, ErrorCheck)> = vec![
        (vec![1, 2, 8, 1, 0, 0, 0, 1, 5], |e| {
            matches!(e, DataError::IdxMagic { .. })
        }),
        (idx_bytes(0x0D, &[1], &[0, 0, 0, 0]), |e| {
            matches!(e, DataError::IdxElementType { found: 0x0D, .. })
        }),
        (idx_bytes(8, &[3], &[1, 2]), |e| {
            matches!(
                e,
                DataError::IdxSize {
                    expected: 3,
                    found: 2,
                    ..
                }
            )
        }),
        (idx_bytes(8, &[2, 1], &[1, 2]), |e| {
            matches!(
                e,
                DataError::IdxDimensions {
                    expected: 1,
                    found: 2,
                    ..
                }
            )
        }),
        (idx_bytes(8, &[2], &[1, 12]), |e| {
            matches!(e, DataError::LabelOutOfRange { label: 12, .. })
        }),
        (vec![0, 0], |e| {
            matches!(
                e,
                DataError::IdxHeader {
                    expected: 4,
                    found: 2,
                    ..
                }
            )
        }),
        (vec![0, 0, 8, 1, 0], |e| {
            matches!(
                e,
                DataError::IdxHeader {
                    expected: 8,
                    found: 5,
                    ..
                }
            )
        }),
        (idx_bytes(8, &[2], &[1, 2, 3]), |e| {
            matches!(e, DataError::IdxTrailing { expected: 2, .. })
        }),
    ];
    for (bytes, is_expected) in cases {
        let (_dir, path) = write_temp("labels.idx", &bytes);
        let error = data::load_idx_labels(&path, 10).unwrap_err();
        assert!(is_expected(&error), "unexpected error: {error}");
        assert!(error.to_string().contains("labels.idx"), "{error}");
    }
}

#[test]
fn idx_truncated_images_and_count_mismatch() {
    let (_dir, truncated) = write_temp("images.idx", &idx_bytes(8, &[3, 2, 2], &[0; 10]));
    let error = data::load_idx_images(&truncated).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::IdxSize {
                expected: 12,
                found: 10,
                ..
            }
        ),
        "{error}"
    );

    let (_dir2, images) = write_temp("images.idx", &idx_bytes(8, &[3, 2, 2], &[0; 12]));
    let (_dir3, labels) = write_temp("labels.idx", &idx_bytes(8, &[2], &[1, 2]));
    let error = data::load_idx_pair(&images, &labels, 10).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::CountMismatch {
                image_count: 3,
                label_count: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("3 images") && error.to_string().contains("2 labels"));
}

#[test]
fn unknown_directory_layout() {
    let dir = tempfile::tempdir().unwrap();
    let error =
        Dataset::<f32>::load(&DataSource::Directory(dir.path().to_path_buf()), 10).unwrap_err();
    assert!(matches!(error, DataError::UnknownLayout { .. }), "{error}");
}
