//! Property tests of every parser nabla runs on outside input: CSV (plain and gzip), IDX
//! (plain and gzip), `.npz` with its sidecar, `.safetensors`, the sidecar itself, and
//! tables (CSV/TSV with headers, quotes and missing values, gzip, `.npy`, `.npz`) with the
//! preprocessing fitted on them; and a round-trip property of the table reader (random
//! tables written with random delimiters, quoting, line ends and missing tokens read back
//! cell for cell).
//!
//! Each case takes a valid file from the seed corpus (`tests/fuzz_corpus/`) and applies
//! random mutations (bit flips, truncation, inserted and deleted bytes, and header-sized
//! words set to 0, 1, 2^31, 2^63 or u64::MAX), to the bytes as stored and, for gzip and
//! the archives, to the contents before they are packed again. Every case must load or be
//! refused with an error: never panic, and never allocate more than [`ALLOCATION_BOUND`]
//! (a counting global allocator in this test binary watches the peak).
//!
//! `FUZZ_CASES` sets the cases per parser (default 10,000; CI runs the default):
//!
//! ```text
//! FUZZ_CASES=1000000 cargo test --release --test fuzz
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use nabla::checkpoint;
use nabla::data;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sha2::{Digest, Sha256};

/// The most memory one parse may hold at once, above what was held before it. The seeds
/// are under 2 kB; only a size taken on trust from a header could need more.
const ALLOCATION_BOUND: usize = 16 << 20;

struct PeakAllocator;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: PeakAllocator = PeakAllocator;

/// The parsers take turns: the peak is process-wide.
static TURN: Mutex<()> = Mutex::new(());

/// Runs `parse` and returns the peak memory it held above what was held before.
fn peak_of(parse: impl FnOnce()) -> usize {
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    parse();
    PEAK.load(Ordering::Relaxed).saturating_sub(before)
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz_corpus")
            .join(name),
    )
    .unwrap()
}

/// One change to a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit {
        at: usize,
        bit: u8,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Delete {
        at: usize,
        len: usize,
    },
    /// A header-sized word (4 or 8 bytes, either endianness) set to an edge value.
    SetWord {
        at: usize,
        wide: bool,
        big_endian: bool,
        value: u64,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Positions are taken modulo the length; half of them within the first 64 bytes,
    // where every format keeps its header.
    let at = prop_oneof![0usize..64, any::<usize>()];
    prop_oneof![
        (at.clone(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        at.clone().prop_map(|at| Mutation::Truncate { at }),
        (at.clone(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (at.clone(), 1usize..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (
            at,
            any::<bool>(),
            any::<bool>(),
            prop::sample::select(vec![0u64, 1, 1 << 31, 1 << 63, u64::MAX, 0xFFFF_FFFF])
        )
            .prop_map(|(at, wide, big_endian, value)| Mutation::SetWord {
                at,
                wide,
                big_endian,
                value
            }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len().max(1);
    match *mutation {
        Mutation::FlipBit { at, bit } => {
            if let Some(byte) = bytes.get_mut(at % len) {
                *byte ^= 1 << bit;
            }
        }
        Mutation::Truncate { at } => bytes.truncate(at % len),
        Mutation::Insert {
            at,
            bytes: ref inserted,
        } => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, inserted.iter().copied());
        }
        Mutation::Delete { at, len: count } => {
            let at = at % len;
            let end = (at + count).min(bytes.len());
            if at < end {
                bytes.drain(at..end);
            }
        }
        Mutation::SetWord {
            at,
            wide,
            big_endian,
            value,
        } => {
            let word: Vec<u8> = match (wide, big_endian) {
                (true, true) => value.to_be_bytes().to_vec(),
                (true, false) => value.to_le_bytes().to_vec(),
                (false, true) => (value as u32).to_be_bytes().to_vec(),
                (false, false) => (value as u32).to_le_bytes().to_vec(),
            };
            let at = at % len;
            for (offset, byte) in word.into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + offset) {
                    *slot = byte;
                }
            }
        }
    }
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
    out
}

/// The members of a zip archive, in order.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut member = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut member, &mut data).unwrap();
            (member.name().to_string(), data)
        })
        .collect()
}

fn zip_of(members: &[(String, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in members {
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A deterministic runner of `cases` cases (the same cases every run, none persisted).
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    )
}

/// Fuzzes one parser: `make` turns the mutations into the files to parse (in `dir`), and
/// `parse` reads them; a panic or a peak above the bound fails the case.
fn fuzz(name: &str, make: impl Fn(&[Mutation], &Path), parse: impl Fn(&Path)) {
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let mut runner = runner(cases());
    let started = std::time::Instant::now();
    let result = runner.run(&mutations(), |mutations| {
        make(&mutations, dir.path());
        let peak = peak_of(|| parse(dir.path()));
        prop_assert!(
            peak <= ALLOCATION_BOUND,
            "{name}: {mutations:?} held {peak} bytes"
        );
        Ok(())
    });
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
    println!(
        "{name}: {} cases in {:.1} s, no panic, peak within {} MB",
        cases(),
        started.elapsed().as_secs_f64(),
        ALLOCATION_BOUND >> 20
    );
}

fn mutated(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for mutation in mutations {
        apply(&mut bytes, mutation);
    }
    bytes
}

fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn csv_never_panics() {
    let plain = corpus("rows.csv");
    let packed = corpus("rows.csv.gz");
    fuzz(
        "csv",
        |m, dir| std::fs::write(file(dir, "a.csv"), mutated(&plain, m)).unwrap(),
        |dir| {
            let _ = data::load_csv::<f32>(&file(dir, "a.csv"), 10);
            let _ = data::load_csv_features::<f64>(&file(dir, "a.csv"));
        },
    );
    fuzz(
        "csv.gz (gzip bytes)",
        |m, dir| std::fs::write(file(dir, "a.csv"), mutated(&packed, m)).unwrap(),
        |dir| {
            let _ = data::load_csv::<f32>(&file(dir, "a.csv"), 10);
        },
    );
    fuzz(
        "csv.gz (contents)",
        |m, dir| std::fs::write(file(dir, "a.csv"), gzip(&mutated(&plain, m))).unwrap(),
        |dir| {
            let _ = data::load_csv::<f32>(&file(dir, "a.csv"), 10);
        },
    );
}

#[test]
fn idx_never_panics() {
    let images = corpus("images.idx");
    let labels = corpus("labels.idx");
    let packed = corpus("images.idx.gz");
    fuzz(
        "idx images",
        |m, dir| std::fs::write(file(dir, "i.idx"), mutated(&images, m)).unwrap(),
        |dir| {
            let _ = data::load_idx_images(&file(dir, "i.idx"));
        },
    );
    fuzz(
        "idx labels",
        |m, dir| std::fs::write(file(dir, "l.idx"), mutated(&labels, m)).unwrap(),
        |dir| {
            let _ = data::load_idx_labels(&file(dir, "l.idx"), 10);
        },
    );
    fuzz(
        "idx.gz (gzip bytes)",
        |m, dir| std::fs::write(file(dir, "i.idx"), mutated(&packed, m)).unwrap(),
        |dir| {
            let _ = data::load_idx_images(&file(dir, "i.idx"));
        },
    );
    fuzz(
        "idx.gz (contents)",
        |m, dir| std::fs::write(file(dir, "i.idx"), gzip(&mutated(&images, m))).unwrap(),
        |dir| {
            let _ = data::load_idx_images(&file(dir, "i.idx"));
        },
    );
}

#[test]
fn a_gzip_bomb_is_stopped_at_its_declared_size() {
    // A header declaring 3 images of 2 x 3 pixels, then 64 MB of zeros (65 kB gzipped):
    // refused after reading one byte past the 18 declared, holding little memory.
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut contents = corpus("images.idx");
    contents.resize(contents.len() + (64 << 20), 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.idx.gz");
    std::fs::write(&path, gzip(&contents)).unwrap();
    drop(contents);
    let mut result = None;
    let peak = peak_of(|| result = Some(data::load_idx_images(&path)));
    let error = result.unwrap().unwrap_err();
    assert!(
        error.to_string().contains("runs past the 18 bytes"),
        "{error}"
    );
    assert!(peak < 1 << 20, "held {peak} bytes");
}

#[test]
fn npz_and_its_sidecar_never_panic() {
    let npz = corpus("model.npz");
    let sidecar = String::from_utf8(corpus("model.json")).unwrap();
    let members = unzip(&npz);
    let model = || {
        nabla::MultiLayerPerceptron::<f32>::from_sizes(
            &[5, 3, 10],
            nabla::ActivationKind::Relu,
            nabla::Init::Zeros,
            1,
        )
        .unwrap()
    };
    // The archive's bytes (nearly always refused by the zip reader or the hash).
    fuzz(
        "npz (zip bytes)",
        |m, dir| {
            std::fs::write(file(dir, "m.npz"), mutated(&npz, m)).unwrap();
            std::fs::write(file(dir, "m.json"), &sidecar).unwrap();
        },
        |dir| {
            let _ = checkpoint::load::<f32>(&file(dir, "m.npz"));
            let _ = checkpoint::load_weights_into(&mut model(), &file(dir, "m.npz"));
        },
    );
    // The .npy members' bytes, packed again (stored or deflated), with a sidecar whose
    // hash matches, so that the arrays themselves are parsed.
    fuzz(
        "npz (.npy contents)",
        |m, dir| {
            let which = m.len() % members.len();
            let mut changed = members.clone();
            changed[which].1 = mutated(&changed[which].1, m);
            let bytes = zip_of(&changed, m.len() % 2 == 0);
            let hash = sha256_hex(&bytes);
            std::fs::write(file(dir, "m.npz"), &bytes).unwrap();
            let json = sidecar.replace(&sidecar_hash(&sidecar), &hash);
            std::fs::write(file(dir, "m.json"), json).unwrap();
        },
        |dir| {
            let _ = checkpoint::load::<f64>(&file(dir, "m.npz"));
            let _ = checkpoint::load_weights_into(&mut model(), &file(dir, "m.npz"));
        },
    );
    // The sidecar's bytes, beside the valid archive.
    fuzz(
        "sidecar",
        |m, dir| {
            std::fs::write(file(dir, "m.npz"), &npz).unwrap();
            std::fs::write(file(dir, "m.json"), mutated(sidecar.as_bytes(), m)).unwrap();
        },
        |dir| {
            let _ = checkpoint::load::<f32>(&file(dir, "m.npz"));
        },
    );
}

/// The hash a sidecar records.
fn sidecar_hash(sidecar: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(sidecar).unwrap();
    value["npz_sha256"].as_str().unwrap().to_string()
}

#[test]
fn safetensors_never_panics() {
    let seed = corpus("model.safetensors");
    let model = || {
        nabla::MultiLayerPerceptron::<f32>::from_sizes(
            &[5, 3, 10],
            nabla::ActivationKind::Relu,
            nabla::Init::Zeros,
            1,
        )
        .unwrap()
    };
    fuzz(
        "safetensors",
        |m, dir| std::fs::write(file(dir, "m.safetensors"), mutated(&seed, m)).unwrap(),
        |dir| {
            let _ = checkpoint::load::<f32>(&file(dir, "m.safetensors"));
            let _ = checkpoint::load_weights_into(&mut model(), &file(dir, "m.safetensors"));
        },
    );
    // The JSON header alone, its length word kept right, so that mutations reach the
    // metadata, shapes and offsets rather than the length check.
    let header_len = u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize;
    let (header, data) = (
        seed[8..8 + header_len].to_vec(),
        seed[8 + header_len..].to_vec(),
    );
    fuzz(
        "safetensors (header)",
        |m, dir| {
            let header = mutated(&header, m);
            let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
            bytes.extend_from_slice(&header);
            bytes.extend_from_slice(&data);
            std::fs::write(file(dir, "m.safetensors"), bytes).unwrap();
        },
        |dir| {
            let _ = checkpoint::load::<f64>(&file(dir, "m.safetensors"));
        },
    );
}

/// A table source over `path` that fits the preprocessing too (label `species` when the
/// file has it, else the last column; half the rows as the test split).
fn table_source(path: &Path, label: Option<&str>) -> data::TableSource {
    data::TableSource {
        train: path.to_path_buf(),
        test_split: Some(0.5),
        columns: data::preprocess::ColumnChoice {
            label: label.map(str::to_string),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Reads the table at `path` and builds a data set from it (errors are fine).
fn read_table(path: &Path, label: Option<&str>) {
    let _ = data::tabular::Table::read(path, &data::tabular::ReadOptions::default());
    let _ = table_source(path, label).load::<f32>(1, None);
}

#[test]
fn tables_never_panic() {
    let csv = corpus("table.csv");
    fuzz(
        "table csv",
        |m, dir| std::fs::write(file(dir, "t.csv"), mutated(&csv, m)).unwrap(),
        |dir| read_table(&file(dir, "t.csv"), Some("species")),
    );
    fuzz(
        "table csv.gz (contents)",
        |m, dir| std::fs::write(file(dir, "t.csv.gz"), gzip(&mutated(&csv, m))).unwrap(),
        |dir| read_table(&file(dir, "t.csv.gz"), Some("species")),
    );
    let npy = corpus("table.npy");
    fuzz(
        "table npy",
        |m, dir| std::fs::write(file(dir, "t.npy"), mutated(&npy, m)).unwrap(),
        |dir| read_table(&file(dir, "t.npy"), None),
    );
    let parquet = corpus("table.parquet");
    fuzz(
        "table parquet",
        |m, dir| std::fs::write(file(dir, "t.parquet"), mutated(&parquet, m)).unwrap(),
        |dir| read_table(&file(dir, "t.parquet"), Some("species")),
    );
    let members = unzip(&corpus("table.npz"));
    fuzz(
        "table npz (.npy contents)",
        |m, dir| {
            let which = m.len() % members.len();
            let mut changed = members.clone();
            changed[which].1 = mutated(&changed[which].1, m);
            std::fs::write(file(dir, "t.npz"), zip_of(&changed, m.len() % 2 == 0)).unwrap();
        },
        |dir| read_table(&file(dir, "t.npz"), None),
    );
}

/// One cell of a generated table.
#[derive(Clone, Debug)]
enum CellValue {
    Missing(&'static str),
    Number(f64),
    Text(String),
}

/// A generated table: per column, numeric or text, and its cells.
fn generated_table() -> impl Strategy<Value = (Vec<bool>, Vec<Vec<CellValue>>)> {
    (1usize..5, 2usize..30).prop_flat_map(|(width, rows)| {
        let kinds = proptest::collection::vec(any::<bool>(), width);
        kinds.prop_flat_map(move |kinds| {
            let columns: Vec<_> = kinds
                .iter()
                .map(|&numeric| proptest::collection::vec(cell(numeric), rows))
                .collect();
            (Just(kinds), columns)
        })
    })
}

fn cell(numeric: bool) -> BoxedStrategy<CellValue> {
    let missing =
        proptest::sample::select(&data::tabular::MISSING_TOKENS[..]).prop_map(CellValue::Missing);
    if numeric {
        let number = (-1e6f64..1e6).prop_map(CellValue::Number);
        prop_oneof![4 => number, 1 => missing].boxed()
    } else {
        // Words that are no number and no missing token, with the characters that need
        // quoting among them.
        let text = "w[a-z ,;|\t\"\n\r]{0,6}[a-z]".prop_map(CellValue::Text);
        prop_oneof![4 => text, 1 => missing].boxed()
    }
}

/// `field` for a CSV with `delimiter`: quoted (quotes doubled) when it holds the
/// delimiter, a quote or a line end, or when `always`.
fn quoted(field: &str, delimiter: char, always: bool) -> String {
    if always || field.contains([delimiter, '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[test]
fn tables_read_back_cell_for_cell() {
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    let mut runner = runner(cases() / 10);
    let strategy = (
        generated_table(),
        proptest::sample::select(vec![',', '\t', ';', '|']),
        any::<bool>(),
        any::<bool>(),
    );
    let result = runner.run(
        &strategy,
        |((kinds, columns), delimiter, crlf, quote_all)| {
            let rows = columns[0].len();
            let end = if crlf { "\r\n" } else { "\n" };
            let names: Vec<String> = (0..kinds.len()).map(|j| format!("name{j}")).collect();
            let mut text = names.join(&delimiter.to_string()) + end;
            for row in 0..rows {
                let fields: Vec<String> = columns
                    .iter()
                    .map(|column| match &column[row] {
                        // A one-column row with an empty field is a blank line, which
                        // readers (nabla's, pandas') skip: that table says NA instead.
                        CellValue::Missing("") if kinds.len() == 1 => "NA".to_string(),
                        CellValue::Missing(token) => token.to_string(),
                        CellValue::Number(value) => value.to_string(),
                        CellValue::Text(word) => quoted(word, delimiter, quote_all),
                    })
                    .collect();
                text.push_str(&(fields.join(&delimiter.to_string()) + end));
            }
            std::fs::write(&path, &text).unwrap();
            let options = data::tabular::ReadOptions {
                delimiter: Some(delimiter as u8),
                header: data::tabular::HeaderMode::Yes,
                ..Default::default()
            };
            let peak = peak_of(|| {
                let table = data::tabular::Table::read(&path, &options);
                let table = table.map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")));
                let table = match table {
                    Ok(table) => table,
                    Err(error) => panic!("{error}"),
                };
                assert_eq!(table.names, names);
                assert_eq!(table.rows(), rows, "{text:?}");
                for (j, column) in columns.iter().enumerate() {
                    let read = &table.columns[j];
                    for (row, expected) in column.iter().enumerate() {
                        match expected {
                            CellValue::Missing(_) => {
                                assert!(read.is_missing(row), "{text:?} ({row}, {j})")
                            }
                            CellValue::Number(value) => match read {
                                data::tabular::Column::Numbers(values) => {
                                    assert_eq!(values[row], *value)
                                }
                                other => panic!("column {j} read as text: {other:?}"),
                            },
                            CellValue::Text(word) => {
                                assert_eq!(&read.text_of(row), word, "{text:?}")
                            }
                        }
                    }
                }
            });
            prop_assert!(peak <= ALLOCATION_BOUND);
            Ok(())
        },
    );
    if let Err(error) = result {
        panic!("tables: {error}");
    }
}

#[test]
fn the_seeds_load() {
    // Unmutated, every seed parses: the mutations start from valid files.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
    let options = data::tabular::ReadOptions::default();
    let table = data::tabular::Table::read(&dir.join("table.csv"), &options).unwrap();
    assert!(table.header);
    assert_eq!(table.rows(), 5);
    assert_eq!(table.columns[4].text_of(1), "Biscoe, north");
    assert_eq!(table.columns[4].text_of(3), "Tor\"gersen");
    assert!(table.columns[2].is_missing(1) && table.columns[3].is_missing(2));
    assert!(table.columns[5].is_missing(2) && table.columns[5].is_missing(3));
    let loaded = table_source(&dir.join("table.csv"), Some("species"))
        .load::<f32>(1, None)
        .unwrap();
    assert_eq!(
        loaded.preprocessing.classes,
        ["Adelie", "Chinstrap", "Gentoo"]
    );
    let npz = data::tabular::Table::read(&dir.join("table.npz"), &options).unwrap();
    assert_eq!((npz.rows(), npz.names.len()), (4, 3));
    let parquet = data::tabular::Table::read(&dir.join("table.parquet"), &options).unwrap();
    assert_eq!((parquet.rows(), parquet.names.len()), (344, 9));
    let npy = data::tabular::Table::read(&dir.join("table.npy"), &options).unwrap();
    assert_eq!((npy.rows(), npy.names.len()), (3, 3));
    assert_eq!(
        data::load_csv::<f32>(&dir.join("rows.csv"), 10)
            .unwrap()
            .1
            .to_vec(),
        [3, 0, 9, 2]
    );
    assert_eq!(
        data::load_csv::<f32>(&dir.join("rows.csv.gz"), 10)
            .unwrap()
            .1
            .len(),
        4
    );
    assert_eq!(
        data::load_idx_images(&dir.join("images.idx"))
            .unwrap()
            .dim(),
        (3, 6)
    );
    assert_eq!(
        data::load_idx_images(&dir.join("images.idx.gz"))
            .unwrap()
            .dim(),
        (3, 6)
    );
    assert_eq!(
        data::load_idx_labels(&dir.join("labels.idx"), 10)
            .unwrap()
            .to_vec(),
        [7, 0, 9]
    );
    let a = checkpoint::load::<f32>(&dir.join("model.npz")).unwrap();
    let b = checkpoint::load::<f32>(&dir.join("model.safetensors")).unwrap();
    for (x, y) in a.linear_layers().zip(b.linear_layers()) {
        assert_eq!(x.weights(), y.weights());
    }
    assert_eq!(gunzip(&corpus("labels.idx.gz")), corpus("labels.idx"));
}

/// `--layers` specs: the issue's CNN and a spec of every layer, mutated byte by byte
/// (and kept as text where the bytes stay UTF-8), never panic; an error's position and
/// token always point into the spec.
#[test]
fn layer_specs_never_panic() {
    use nabla::network::spec::{infer_shapes, parse, Shape};
    let seeds = [
        "Conv2d(32, 3, padding=1), ReLU, MaxPool2d(2), Conv2d(64, 3, padding=1), ReLU, \
         MaxPool2d(2), Flatten, Linear(128), ReLU, Dropout(0.25), Linear(10)",
        "Conv2d(8, kernel_size=(3, 5), stride=2, bias=False), BatchNorm2d(8, eps=1e-3), \
         AvgPool2d(3, stride=1, padding=1), Flatten, LayerNorm, LeakyReLU(0.2), \
         GELU(approximate='tanh'), SiLU, ELU(alpha=0.5), BatchNorm1d, Linear(4, bias=True)",
    ];
    let inputs = [
        Shape::Image {
            channels: 1,
            height: 28,
            width: 28,
        },
        Shape::Flat(7),
    ];
    let mut runner = runner(cases());
    for seed in seeds {
        runner
            .run(&mutations(), |mutations| {
                let bytes = mutated(seed.as_bytes(), &mutations);
                let Ok(spec) = std::str::from_utf8(&bytes) else {
                    return Ok(());
                };
                let check = |error: nabla::network::spec::SpecError| {
                    let at = spec.get(error.position..);
                    prop_assert!(
                        at.is_some_and(|rest| rest.starts_with(&error.token)),
                        "{spec:?}: {error}"
                    );
                    Ok(())
                };
                match parse(spec) {
                    Ok(layers) => {
                        for input in inputs {
                            if let Err(error) = infer_shapes(&layers, input) {
                                check(error)?;
                            }
                        }
                    }
                    Err(error) => check(error)?,
                }
                Ok(())
            })
            .unwrap();
    }
}
