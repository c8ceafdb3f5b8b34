//! Data sets: the bundled MNIST (IDX) and the assignment's 3,000/1,000 CSV subset, and
//! loaders for any CSV or IDX data in the same layouts.
//!
//! A [`Dataset`] has the assignment's four keys: `train_x`, `train_y`, `test_x`,
//! `test_y`. Features are rows `(examples, features)`; labels are class indices.

mod csv;
mod error;
mod features;
mod file;
mod idx;
pub mod preprocess;
mod split;
mod table_dataset;
pub mod tabular;

use std::path::{Path, PathBuf};

use ndarray::{s, Array1};

pub use self::csv::{load_csv, load_csv_features, write_pixels_csv};
pub use error::DataError;
pub use features::Features;
pub(crate) use features::Rows;
pub use idx::{load_idx_images, load_idx_labels, load_idx_pair};
pub use split::stratified_split;
pub use table_dataset::{TableDataset, TableSource};

use crate::float::Float;

/// The number of MNIST classes (digits 0-9).
pub const MNIST_CLASSES: usize = 10;

/// File names of the four MNIST IDX files, each tried with `.gz` first.
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Rows in the assignment's training subset (the first MNIST training images).
pub const SUBSET_TRAIN_ROWS: usize = 3000;
/// Rows in the assignment's test subset (the first MNIST test images).
pub const SUBSET_TEST_ROWS: usize = 1000;

/// A training set and a test set with the same features and classes.
#[derive(Clone, Debug)]
pub struct Dataset<F> {
    /// Training features, `(train rows, features)`.
    pub train_x: Features<F>,
    /// Training labels, `(train rows)`, each in `0..classes`.
    pub train_y: Array1<usize>,
    /// Test features, `(test rows, features)`.
    pub test_x: Features<F>,
    /// Test labels, `(test rows)`, each in `0..classes`.
    pub test_y: Array1<usize>,
    /// The number of classes.
    pub classes: usize,
    /// A validation set, when one was split off or given.
    pub validation: Option<Subset<F>>,
    /// For regression: the target values (then `classes` is 1 and the labels are all 0).
    pub values: Option<TargetValues>,
}

/// Regression targets: per set, the values standardised with the training rows' mean
/// and standard deviation (what the loss sees), and that scaling, to report errors in
/// the target's own units (`value = standardised * scale + center`).
#[derive(Clone, Debug, PartialEq)]
pub struct TargetValues {
    /// Training targets, `(train rows)`, standardised.
    pub train: Array1<f64>,
    /// Test targets, `(test rows)`, standardised.
    pub test: Array1<f64>,
    /// Validation targets, `(validation rows)`, standardised.
    pub val: Option<Array1<f64>>,
    /// The training targets' mean.
    pub center: f64,
    /// The training targets' standard deviation (1 for a constant target).
    pub scale: f64,
}

/// Features and labels of one set of rows.
#[derive(Clone, Debug)]
pub struct Subset<F> {
    /// Features, `(rows, features)`.
    pub x: Features<F>,
    /// Labels, `(rows)`.
    pub y: Array1<usize>,
}

/// Where a data set's files are: a directory (CSV or IDX layout, detected) or explicit files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// A directory holding `train.csv[.gz]` and `test.csv[.gz]`, or the four MNIST IDX files.
    Directory(PathBuf),
    /// Two CSV files.
    Csv {
        /// The training file.
        train: PathBuf,
        /// The test file.
        test: PathBuf,
    },
    /// Four IDX files.
    Idx {
        /// Training images.
        train_images: PathBuf,
        /// Training labels.
        train_labels: PathBuf,
        /// Test images.
        test_images: PathBuf,
        /// Test labels.
        test_labels: PathBuf,
    },
}

impl<F: Float> Dataset<F> {
    /// A data set from its parts, checked: labels match rows, features match between
    /// training and test.
    pub fn new(
        train_x: Features<F>,
        train_y: Array1<usize>,
        test_x: Features<F>,
        test_y: Array1<usize>,
        classes: usize,
    ) -> Result<Self, DataError> {
        for (part, x, y) in [("training", &train_x, &train_y), ("test", &test_x, &test_y)] {
            if x.nrows() != y.len() {
                return Err(DataError::LengthMismatch {
                    part,
                    rows: x.nrows(),
                    labels: y.len(),
                });
            }
        }
        if train_x.ncols() != test_x.ncols() {
            return Err(DataError::FeatureMismatch {
                train: train_x.ncols(),
                test: test_x.ncols(),
            });
        }
        Ok(Self {
            train_x,
            train_y,
            test_x,
            test_y,
            classes,
            validation: None,
            values: None,
        })
    }

    /// A regression data set: `train_x`, `test_x` with targets `train_t`, `test_t` in
    /// their own units, standardised here with `scaling` (`(center, scale)`; `None`: the
    /// training targets' mean and standard deviation). `classes` is 1 and every label is
    /// 0, so that splits and batches work as for one class.
    pub fn regression(
        train_x: Features<F>,
        train_t: Array1<f64>,
        test_x: Features<F>,
        test_t: Array1<f64>,
        scaling: Option<(f64, f64)>,
    ) -> Result<Self, DataError> {
        let (center, scale) = scaling.unwrap_or_else(|| {
            let rows = train_t.len().max(1) as f64;
            let center = train_t.sum() / rows;
            let variance = train_t
                .iter()
                .map(|t| (t - center) * (t - center))
                .sum::<f64>()
                / rows;
            let largest = train_t.iter().fold(0.0f64, |m, t| m.max(t.abs()));
            (center, preprocess::nonzero(variance.sqrt(), largest))
        });
        if !(center.is_finite() && scale.is_finite()) {
            return Err(DataError::TargetOverflow {
                largest: train_t.iter().fold(0.0f64, |m, t| m.max(t.abs())),
            });
        }
        let standardise = |t: &Array1<f64>| t.mapv(|t| (t - center) / scale);
        let zeros = |n: usize| Array1::<usize>::zeros(n);
        let dataset = Self::new(
            train_x,
            zeros(train_t.len()),
            test_x,
            zeros(test_t.len()),
            1,
        )?;
        Ok(Self {
            values: Some(TargetValues {
                train: standardise(&train_t),
                test: standardise(&test_t),
                val: None,
                center,
                scale,
            }),
            ..dataset
        })
    }

    /// Holds out `fraction` (in (0, 1)) of the training rows as the validation set,
    /// stratified by class and chosen with `seed` (see [`stratified_split`]); the rows
    /// that stay keep their order.
    pub fn split_validation(self, fraction: f64, seed: u64) -> Result<Self, DataError> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(DataError::ValidationFraction { fraction });
        }
        let labels = self.train_y.to_vec();
        let (kept, held_out) = stratified_split(&labels, self.classes, fraction, seed);
        if kept.is_empty() || held_out.is_empty() {
            return Err(DataError::ValidationSplitEmpty {
                fraction,
                rows: labels.len(),
            });
        }
        let pick =
            |rows: &[usize]| -> Array1<usize> { rows.iter().map(|&row| labels[row]).collect() };
        let values = self.values.map(|values| {
            let pick =
                |rows: &[usize]| -> Array1<f64> { rows.iter().map(|&r| values.train[r]).collect() };
            TargetValues {
                train: pick(&kept),
                val: Some(pick(&held_out)),
                ..values
            }
        });
        Ok(Self {
            validation: Some(Subset {
                x: self.train_x.select(&held_out),
                y: pick(&held_out),
            }),
            train_x: self.train_x.select(&kept),
            train_y: pick(&kept),
            values,
            ..self
        })
    }

    /// Uses `x: (rows, features)`, `y: (rows)` as the validation set.
    pub fn with_validation(self, x: Features<F>, y: Array1<usize>) -> Result<Self, DataError> {
        if x.nrows() != y.len() {
            return Err(DataError::LengthMismatch {
                part: "validation",
                rows: x.nrows(),
                labels: y.len(),
            });
        }
        if x.ncols() != self.train_x.ncols() {
            return Err(DataError::FeatureMismatch {
                train: self.train_x.ncols(),
                test: x.ncols(),
            });
        }
        Ok(Self {
            validation: Some(Subset { x, y }),
            ..self
        })
    }

    /// Uses `x: (rows, features)` with regression targets `targets: (rows)` (in the
    /// target's own units) as the validation set of a regression data set.
    pub fn with_validation_targets(
        self,
        x: Features<F>,
        targets: Array1<f64>,
    ) -> Result<Self, DataError> {
        let rows = targets.len();
        let dataset = self.with_validation(x, Array1::zeros(rows))?;
        let values = dataset.values.clone().map(|values| TargetValues {
            val: Some(targets.mapv(|t| (t - values.center) / values.scale)),
            ..values
        });
        Ok(Self { values, ..dataset })
    }

    /// Loads a data set from `source` with labels in `0..classes`.
    pub fn load(source: &DataSource, classes: usize) -> Result<Self, DataError> {
        match source {
            DataSource::Directory(dir) => Self::load(&detect_layout(dir)?, classes),
            DataSource::Csv { train, test } => {
                let (train_x, train_y) = load_csv(train, classes)?;
                let (test_x, test_y) = load_csv(test, classes)?;
                Self::new(
                    Features::Dense(train_x),
                    train_y,
                    Features::Dense(test_x),
                    test_y,
                    classes,
                )
            }
            DataSource::Idx {
                train_images,
                train_labels,
                test_images,
                test_labels,
            } => {
                let (train_x, train_y) = load_idx_pair(train_images, train_labels, classes)?;
                let (test_x, test_y) = load_idx_pair(test_images, test_labels, classes)?;
                Self::new(
                    Features::Pixels(train_x),
                    train_y,
                    Features::Pixels(test_x),
                    test_y,
                    classes,
                )
            }
        }
    }

    /// Features per row.
    pub fn num_features(&self) -> usize {
        self.train_x.ncols()
    }

    /// The first `train_rows` training and `test_rows` test examples.
    pub fn head(&self, train_rows: usize, test_rows: usize) -> Self {
        let train_rows = train_rows.min(self.train_y.len());
        let test_rows = test_rows.min(self.test_y.len());
        Self {
            train_x: self.train_x.head(train_rows),
            train_y: self.train_y.slice(s![..train_rows]).to_owned(),
            test_x: self.test_x.head(test_rows),
            test_y: self.test_y.slice(s![..test_rows]).to_owned(),
            classes: self.classes,
            validation: self.validation.clone(),
            values: self.values.as_ref().map(|values| TargetValues {
                train: values.train.slice(s![..train_rows]).to_owned(),
                test: values.test.slice(s![..test_rows]).to_owned(),
                ..values.clone()
            }),
        }
    }
}

/// Full MNIST (60,000 training and 10,000 test images, pixels kept as bytes) from the
/// four IDX files in `dir`.
pub fn mnist<F: Float>(dir: &Path) -> Result<Dataset<F>, DataError> {
    Dataset::load(&mnist_source(dir)?, MNIST_CLASSES)
}

/// The assignment's subset (`train.csv[.gz]`, 3,000 rows, and `test.csv[.gz]`, 1,000 rows)
/// from `dir`.
pub fn mnist_subset<F: Float>(dir: &Path) -> Result<Dataset<F>, DataError> {
    Dataset::load(&csv_source(dir)?, MNIST_CLASSES)
}

fn mnist_source(dir: &Path) -> Result<DataSource, DataError> {
    let find = |stem: &str| file::find_compressed_or_plain(dir, stem);
    Ok(DataSource::Idx {
        train_images: find(MNIST_FILES[0])?,
        train_labels: find(MNIST_FILES[1])?,
        test_images: find(MNIST_FILES[2])?,
        test_labels: find(MNIST_FILES[3])?,
    })
}

fn csv_source(dir: &Path) -> Result<DataSource, DataError> {
    Ok(DataSource::Csv {
        train: file::find_compressed_or_plain(dir, "train.csv")?,
        test: file::find_compressed_or_plain(dir, "test.csv")?,
    })
}

/// Which layout a directory holds: CSV (`train.csv[.gz]`) or MNIST IDX.
fn detect_layout(dir: &Path) -> Result<DataSource, DataError> {
    if !dir.is_dir() {
        return Err(DataError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        });
    }
    if let Ok(source) = csv_source(dir) {
        return Ok(source);
    }
    mnist_source(dir).map_err(|_| DataError::UnknownLayout {
        path: dir.to_path_buf(),
    })
}

/// Writes the assignment's subset files `train.csv.gz` (first `train_rows` training
/// images) and `test.csv.gz` (first `test_rows` test images) into `out_dir` from the MNIST
/// IDX files in `mnist_dir`; returns the two paths. The output is byte-for-byte
/// reproducible.
pub fn write_mnist_subset(
    mnist_dir: &Path,
    out_dir: &Path,
    train_rows: usize,
    test_rows: usize,
) -> Result<[PathBuf; 2], DataError> {
    let mnist: Dataset<f32> = mnist(mnist_dir)?.head(train_rows, test_rows);
    std::fs::create_dir_all(out_dir).map_err(|source| DataError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let train_path = out_dir.join("train.csv.gz");
    let test_path = out_dir.join("test.csv.gz");
    for (path, x, y) in [
        (&train_path, &mnist.train_x, &mnist.train_y),
        (&test_path, &mnist.test_x, &mnist.test_y),
    ] {
        let Features::Pixels(pixels) = x else {
            unreachable!("IDX images load as pixels")
        };
        write_pixels_csv(path, pixels.view(), y.view())?;
    }
    Ok([train_path, test_path])
}
