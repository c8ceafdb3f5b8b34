//! `nabla train`: checks every flag and output path, builds (or resumes) the run, trains
//! it epoch by epoch with progress shown and logged, writes checkpoints, and saves; on
//! Ctrl-C it stops after the current batch, logs the partial epoch, writes the checkpoint
//! and the model, and exits with status 130.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nabla::checkpoint::{self, ModelFormat, TrainedRecord};
use nabla::data::preprocess::{FitSummary, InputColumn, Preprocessing, TransformReport};
use nabla::threads::{self, GemmThreading, ThreadSource};
use nabla::train::{History, Stop, Trainer, TrainingState};
use nabla::{Dataset, Float, MultiLayerPerceptron};
use serde::{Deserialize, Serialize};

use super::args::TrainArgs;
use super::dtype::{run_in, RunInFloat};
use super::log::EpochLog;
use super::output::tell;
use super::progress::{scores, Reporter};
use super::run_folder::{checkpoint_of, lock_outputs, resolved, RunFolder};
use super::settings::{RunConfig, TableFit, TrainSettings};
use super::signals::Interrupt;
use super::CliError;

/// What a run records about itself: its configuration plus where it ran and where it
/// writes; the `run` entry of checkpoints and the folder's `config.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RunRecord {
    /// nabla's version.
    nabla: String,
    /// What the run computes.
    config: RunConfig,
    /// Threads for OpenBLAS and rayon.
    threads: usize,
    /// Who parallelises the GEMMs.
    gemm: String,
    /// SHA-256 of each data file, keyed by its role and path (`train data/train.csv`).
    data_sha256: BTreeMap<String, String>,
    /// Where the run writes, so that a resume continues every output.
    #[serde(default)]
    outputs: Outputs,
    /// For a run on a table, its preprocessing (so that `eval` and `predict` can use a
    /// checkpoint as a model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preprocessing: Option<Preprocessing>,
}

/// Where a run writes: its folder, and the model and log when they are not the folder's
/// own, as paths relative to the checkpoint's folder (so that a run copied or moved with
/// its files continues its own copies); how often it writes a checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Outputs {
    out: Option<PathBuf>,
    save: Option<PathBuf>,
    log: Option<PathBuf>,
    checkpoint_every: Option<usize>,
}

impl Outputs {
    fn of(settings: &TrainSettings) -> Self {
        let folder = settings.out.as_ref();
        let base = settings.checkpoint.as_ref().map(|(path, _)| {
            resolved(path)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        });
        let own = |path: &Option<PathBuf>, folder_file: Option<PathBuf>| {
            path.as_ref()
                .filter(|path| Some(*path) != folder_file.as_ref())
                .map(|path| match &base {
                    Some(base) => relative_to(base, &resolved(path)),
                    None => absolute(path),
                })
        };
        Self {
            out: folder.map(|folder| absolute(folder.dir())),
            save: own(&settings.save, folder.map(RunFolder::model)),
            log: own(&settings.log, folder.map(RunFolder::log)),
            checkpoint_every: settings.checkpoint.as_ref().and_then(|(_, every)| *every),
        }
    }

    /// A recorded output path, for the checkpoint at `checkpoint`.
    fn place(recorded: &Path, checkpoint: &Path) -> PathBuf {
        match checkpoint.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(base) if recorded.is_relative() => base.join(recorded),
            _ => recorded.to_path_buf(),
        }
    }
}

/// `path` made absolute against the current directory (links are not resolved).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `target` as a path from the folder `base` (both absolute): `m.csv`, `../logs/m.csv`.
fn relative_to(base: &Path, target: &Path) -> PathBuf {
    let base: Vec<_> = base.components().collect();
    let target: Vec<_> = target.components().collect();
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..base.len() {
        relative.push("..");
    }
    for component in &target[common..] {
        relative.push(component);
    }
    relative
}

/// Whether two paths name the same file or folder.
fn same_place(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => absolute(a) == absolute(b),
    }
}

/// The run record stored in the checkpoint at `path`.
fn read_record(path: &Path) -> Result<RunRecord, CliError> {
    let run = checkpoint::training_run(path)?;
    serde_json::from_value(run).map_err(|error| CliError::ResumeDiffers {
        flag: "checkpoint".into(),
        saved: format!("unreadable run settings ({error})"),
        given: "a checkpoint written by nabla train".into(),
    })
}

/// Makes a resume continue every output of the run: the outputs not given are the
/// recorded ones, and a run folder's run continues in its folder (the one holding the
/// checkpoint). Returns that folder when the resume continues in it.
fn continue_outputs(
    args: &mut TrainArgs,
    checkpoint: &Path,
    recorded: &Outputs,
) -> Result<Option<PathBuf>, CliError> {
    args.save = args.save.take().or_else(|| {
        recorded
            .save
            .as_deref()
            .map(|path| Outputs::place(path, checkpoint))
    });
    args.log = args.log.take().or_else(|| {
        recorded
            .log
            .as_deref()
            .map(|path| Outputs::place(path, checkpoint))
    });
    args.checkpoint_every = args.checkpoint_every.or(recorded.checkpoint_every);
    let folder_run = recorded.out.is_some() || args.resume.as_deref().is_some_and(Path::is_dir);
    if !folder_run {
        return Ok(None);
    }
    let folder = checkpoint
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    match &args.out {
        None => {
            args.out = Some(folder.clone());
            Ok(Some(folder))
        }
        Some(out) if same_place(out, &folder) => Ok(Some(folder)),
        // Continued in another folder, which must not hold a run.
        Some(_) => Ok(None),
    }
}

/// Validates the flags (with `--resume`, against the saved run), takes the locks of the
/// run's outputs, then trains in the chosen float type.
pub fn run(args: &TrainArgs) -> Result<(), CliError> {
    let mut args = args.clone();
    if let Some(dir) = args.resume.as_deref().filter(|path| path.is_dir()) {
        if !RunFolder::new(dir).checkpoint().is_file() {
            return Err(super::settings::invalid(
                "--resume",
                dir.display(),
                "a run folder holding checkpoint.safetensors (none is there: no run in it got as far as its first checkpoint; start it again with --out)",
            ));
        }
    }
    let resume = args.resume.as_deref().map(checkpoint_of);
    let saved = match &resume {
        Some(path) => Some(read_record(path)?),
        None => None,
    };
    let mut resumed_folder = None;
    if let (Some(path), Some(record)) = (&resume, &saved) {
        resumed_folder = continue_outputs(&mut args, path, &record.outputs)?;
        // The run's own thread count, where this process may use it, so that the resume
        // computes the same bits (the thread count decides how the products are split).
        if args.threads.is_none() && record.threads <= threads::Limits::read().hardware().threads {
            args.threads = Some(record.threads);
        }
        if !args.given.contains("gemm") {
            args.gemm = record.gemm.parse().unwrap_or(args.gemm);
        }
    }
    let folder_lock = match &args.out {
        Some(out) => Some(RunFolder::new(out).prepare(resumed_folder.is_some())?),
        None => None,
    };
    let mut settings =
        TrainSettings::from_args(&args, saved.as_ref().map(|record| &record.config))?;
    settings.continues_elsewhere =
        resume.is_some() && args.out.is_some() && resumed_folder.is_none();
    settings.resume = resume;
    // Each output file too (a run folder's included): another run may name one of them
    // with --save or --log.
    let file_locks = lock_outputs(settings.output_files().iter().map(PathBuf::as_path))?;
    for warning in &settings.warnings {
        tell(&format!("nabla: warning: {warning}"));
    }
    threads::set_threads(Some(settings.threads), settings.gemm);
    let outcome = run_in(settings.dtype, &(settings, saved));
    drop((folder_lock, file_locks));
    outcome
}

impl RunInFloat for &(TrainSettings, Option<RunRecord>) {
    fn run<F: Float>(self) -> Result<(), CliError> {
        train_in::<F>(&self.0, self.1.as_ref())
    }
}

/// The model and training state a run starts from.
fn starting_point<F: Float>(
    settings: &TrainSettings,
    dataset: &Dataset<F>,
) -> Result<(MultiLayerPerceptron<F>, Option<TrainingState<F>>), CliError> {
    let build = |init, seed| new_model::<F>(settings, dataset, init, seed);
    if let Some(path) = &settings.resume {
        let (model, state, _) = checkpoint::load_training::<F>(path)?;
        let fresh = build(nabla::Init::Zeros, 0)?;
        let architecture = |m: &MultiLayerPerceptron<F>| {
            let architecture = checkpoint::Architecture::of(m);
            match architecture.spec {
                Some(spec) => format!("{spec} on {:?}", architecture.input.unwrap_or_default()),
                None => serde_json::to_string(&architecture.layers).unwrap_or_default(),
            }
        };
        if architecture(&model) != architecture(&fresh) {
            return Err(CliError::ResumeDiffers {
                flag: "architecture".into(),
                saved: architecture(&model),
                given: architecture(&fresh),
            });
        }
        return Ok((model, Some(state)));
    }
    let mut model = build(settings.init, settings.run.train.seed)?;
    if let Some(path) = &settings.run.init_from {
        checkpoint::load_weights_into(&mut model, path)?;
    }
    Ok((model, None))
}

/// A new network for `dataset`: from the `--layers` spec (the input shape as
/// [`input_shape`] decides), or `--hidden`/`--activation`'s perceptron.
fn new_model<F: Float>(
    settings: &TrainSettings,
    dataset: &Dataset<F>,
    init: nabla::Init,
    seed: u64,
) -> Result<MultiLayerPerceptron<F>, CliError> {
    let typed = settings
        .layers_typed
        .as_ref()
        .or(settings.run.layers.as_ref());
    if let Some(spec) = typed {
        let layers = nabla::network::spec::parse(spec).map_err(CliError::Layers)?;
        let input = input_shape(dataset.num_features(), &layers);
        let mut model = nabla::network::build(&layers, input, init, seed)?;
        let classes = dataset.classes;
        if model.out_features() != classes {
            let last = layers
                .last()
                .map_or((0, String::new()), |l| (l.position, l.text.clone()));
            return Err(CliError::Layers(nabla::network::spec::SpecError {
                position: last.0,
                token: last.1,
                message: format!(
                    "the network gives {} outputs, but the data has {classes} {}",
                    model.out_features(),
                    if classes == 1 { "target" } else { "classes" }
                ),
            }));
        }
        model.set_training(true);
        return Ok(model);
    }
    let mut sizes = vec![dataset.num_features()];
    sizes.extend(&settings.run.hidden);
    sizes.push(dataset.classes);
    Ok(MultiLayerPerceptron::<F>::from_sizes(
        &sizes,
        settings.activation,
        init,
        seed,
    )?)
}

/// The shape of one example for a `--layers` network: a `1 x s x s` image when the
/// first layer that cares needs an image (`Conv2d`, a pooling, `BatchNorm2d`) and the data
/// has a square number `s * s` of features (MNIST's 784, from IDX or CSV); features
/// otherwise.
fn input_shape(
    features: usize,
    layers: &[nabla::network::spec::Located],
) -> nabla::network::spec::Shape {
    use nabla::network::spec::{LayerSpec, Shape};
    let wants_image = layers.iter().find_map(|located| match located.layer {
        LayerSpec::Conv2d { .. }
        | LayerSpec::MaxPool2d(_)
        | LayerSpec::AvgPool2d(_)
        | LayerSpec::BatchNorm2d { .. } => Some(true),
        LayerSpec::Linear { .. }
        | LayerSpec::Flatten
        | LayerSpec::BatchNorm1d { .. }
        | LayerSpec::LayerNorm { .. } => Some(false),
        LayerSpec::Dropout { .. } | LayerSpec::Activation(_) => None,
    });
    let side = (features as f64).sqrt().round() as usize;
    if wants_image == Some(true) && side * side == features && features > 0 {
        Shape::Image {
            channels: 1,
            height: side,
            width: side,
        }
    } else {
        Shape::Flat(features)
    }
}

fn train_in<F: Float>(settings: &TrainSettings, saved: Option<&RunRecord>) -> Result<(), CliError> {
    let run = &settings.run;
    let loaded = run.data.load_data::<F>(run.train.seed, None)?;
    let dataset = loaded.dataset;
    let trained = TrainedRecord {
        seed: Some(run.train.seed),
        preprocessing: loaded.table.as_ref().map(|fit| fit.preprocessing.clone()),
    };
    if let Some(fit) = &loaded.table {
        for warning in table_warnings(fit) {
            tell(&format!("nabla: warning: {warning}"));
        }
    }
    let record = RunRecord {
        nabla: env!("CARGO_PKG_VERSION").to_string(),
        config: run.clone(),
        threads: settings.threads,
        gemm: settings.gemm.to_string(),
        data_sha256: run.data.fingerprint()?,
        outputs: Outputs::of(settings),
        preprocessing: trained.preprocessing.clone(),
    };
    if let Some(saved) = saved {
        if saved.data_sha256 != record.data_sha256 {
            // Name the file: its content changed, or it is another file.
            let changed: Vec<String> = saved
                .data_sha256
                .iter()
                .filter(|(file, hash)| record.data_sha256.get(*file) != Some(hash))
                .map(|(file, _)| file.clone())
                .chain(
                    record
                        .data_sha256
                        .keys()
                        .filter(|file| !saved.data_sha256.contains_key(*file))
                        .cloned(),
                )
                .collect();
            return Err(CliError::DataChanged {
                files: changed.join(", "),
            });
        }
        if saved.threads != record.threads || saved.gemm != record.gemm {
            tell(&format!(
                "nabla: warning: the run used {} threads ({}), this resume {} ({}): results may differ in the last bits",
                saved.threads, saved.gemm, record.threads, record.gemm
            ));
        }
    }
    let (mut model, state) = starting_point(settings, &dataset)?;
    let run_json = serde_json::to_value(&record).unwrap_or_default();
    let history_so_far = state.as_ref().map(|state| state.history.clone());
    let epochs_done = state.as_ref().map_or(0, |state| state.epoch);
    let mut trainer = match state {
        Some(state) => Trainer::resume(&mut model, &dataset, &run.train, state)?,
        None => Trainer::new(&mut model, &dataset, &run.train)?,
    };
    // A finished run is finished: resuming it trains nothing, and writes only what its
    // end did not (a run killed while writing its model, its summary or its log).
    if let Some(stop) = trainer.stop() {
        let history = trainer.finish();
        let written = if settings.continues_elsewhere {
            Vec::new()
        } else {
            complete_finished_run(settings, &model, &history, &trained)?
        };
        tell(&finished_message(settings, stop, epochs_done, &written));
        return Ok(());
    }
    // A run folder (or a run asked for checkpoints) holds a checkpoint from the start,
    // so that a run killed in its first epoch can be resumed.
    if let (Some((path, every)), None) = (&settings.checkpoint, &history_so_far) {
        if settings.out.is_some() || every.is_some() {
            checkpoint::save_training(path, trainer.model(), &trainer.state(), &run_json)?;
        }
    }
    if let Some(out) = &settings.out {
        RunFolder::write_json(&out.config(), &record)?;
    }
    let log = match (&settings.log, &history_so_far) {
        (Some(path), Some(history)) => {
            let (log, repair) = EpochLog::resume(path, settings, history)?;
            if let Some(repair) = repair {
                tell(&format!("nabla: warning: {repair}"));
            }
            Some(log)
        }
        (Some(path), None) => Some(EpochLog::create(path, settings)?),
        (None, _) => None,
    };
    let show_bars = !settings.quiet && std::io::stdout().is_terminal();
    let interrupt = Interrupt::install()?;
    let mut reporter = Reporter::new(
        run.train.epochs,
        settings.quiet,
        show_bars,
        log,
        Some(interrupt.clone()),
    );
    let started = Instant::now();
    if !settings.quiet {
        let threading = trainer.threading();
        reporter.say(&header(
            settings,
            &dataset,
            trainer.model(),
            epochs_done,
            threading,
        ));
        if let Some(fit) = &loaded.table {
            reporter.say(&table_line(&fit.preprocessing, &fit.summary));
        }
    }
    // The whole loop on the pool, once (see `Trainer::run_epoch`).
    let outcome = threads::on_pool(settings.threads, || {
        train_epochs(settings, &mut trainer, &mut reporter, &run_json)
    });
    reporter.finish();
    if let Err(error) = outcome {
        write_summary(settings, None, &error.to_string(), started, epochs_done);
        return Err(error);
    }
    let stop = trainer.stop();
    // The checkpoint of the run as it ended (interrupted, early-stopped or complete),
    // before early stopping puts the best weights back: resuming it continues the run,
    // or, once it has ended, says so.
    let end_checkpoint = settings.out.is_some()
        || matches!(stop, Some(Stop::Interrupted { .. }))
        || settings
            .checkpoint
            .as_ref()
            .is_some_and(|(_, every)| every.is_some());
    if let (true, Some((path, _))) = (end_checkpoint, &settings.checkpoint) {
        checkpoint::save_training(path, trainer.model(), &trainer.state(), &run_json)?;
    }
    // The model is saved as the run ended, with the best epoch's weights put back when
    // early stopping keeps them (interrupted or not), and even when the log could not be
    // written (that stopped the run).
    let history = trainer.finish();
    let saved_files = match &settings.save {
        Some(path) => {
            checkpoint::save_trained(&model, path, &trained).and_then(|()| files_of(path))
        }
        None => Ok(String::new()),
    };
    if let Some(error) = reporter.error.take() {
        return Err(error);
    }
    let saved_files = saved_files?;
    report_end(settings, &history, &mut reporter, started);
    write_summary(settings, Some(&history), "", started, epochs_done);
    match history.stop {
        Stop::Completed | Stop::EarlyStopped { .. } => {
            if !saved_files.is_empty() && !settings.quiet {
                reporter.say(&format!("saved {saved_files}"));
            }
            if interrupt.requested() {
                // The signal came after the last epoch, while the files were written:
                // they are whole, and the run is complete, but the caller asked to stop.
                let mut message =
                    "interrupted after the last epoch, while saving; the run is complete"
                        .to_string();
                if !saved_files.is_empty() {
                    message.push_str(&format!(" and {saved_files} whole"));
                }
                return Err(CliError::Interrupted(message));
            }
            Ok(())
        }
        Stop::Interrupted { epoch, batch } => {
            let mut message = if batch == 0 {
                format!("interrupted after epoch {}", epoch - 1)
            } else {
                let mut message = format!("interrupted in epoch {epoch} after batch {batch}");
                if settings.log.is_some() {
                    message.push_str("; the log ends with that epoch, marked partial");
                }
                message
            };
            if !saved_files.is_empty() {
                message.push_str(&format!("; saved {saved_files}"));
            }
            if let Some((path, _)) = &settings.checkpoint {
                let target = settings.out.as_ref().map_or(path.as_path(), RunFolder::dir);
                message.push_str(&format!("; resume with --resume {}", target.display()));
            }
            Err(CliError::Interrupted(message))
        }
    }
}

/// Writes the outputs of a finished run that are missing or incomplete (the model, the
/// log, the run folder's summary), as its end would have written them; returns what it
/// wrote.
fn complete_finished_run<F: Float>(
    settings: &TrainSettings,
    model: &MultiLayerPerceptron<F>,
    history: &History,
    trained: &TrainedRecord,
) -> Result<Vec<String>, CliError> {
    let mut written = Vec::new();
    if let Some(path) = &settings.save {
        let files = ModelFormat::of(path)?.files(path);
        if files.iter().any(|file| !file.is_file()) {
            checkpoint::save_trained(model, path, trained)?;
            written.push(files_of(path)?);
        }
    }
    if let Some(path) = &settings.log {
        if !EpochLog::is_complete(path, settings, &history.epochs) {
            EpochLog::resume(path, settings, &history.epochs)?;
            written.push(path.display().to_string());
        }
    }
    if let Some(out) = &settings.out {
        if !out.summary().is_file() {
            let epochs = history.epochs.len();
            write_summary(settings, Some(history), "", Instant::now(), epochs);
            written.push(out.summary().display().to_string());
        }
    }
    Ok(written)
}

/// What a resume of a run that had ended says.
fn finished_message(
    settings: &TrainSettings,
    stop: Stop,
    epochs_done: usize,
    written: &[String],
) -> String {
    let place = settings
        .resume
        .as_ref()
        .map_or_else(String::new, |path| format!(" ({})", path.display()));
    let (how, more) = match stop {
        Stop::EarlyStopped { epoch } => (
            format!("early stopping ended it after epoch {epoch}"),
            "a larger --patience",
        ),
        _ => (
            format!("all {epochs_done} of its epochs are done"),
            "a larger --epochs",
        ),
    };
    let done = if written.is_empty() {
        "nothing was trained or written".to_string()
    } else {
        format!(
            "nothing was trained; wrote what its end had not: {}",
            written.join(", ")
        )
    };
    format!("nabla: the run{place} has finished: {how}; {done}. To train further, resume it with {more}")
}

/// Runs the epochs, writing a checkpoint every `--checkpoint-every` epochs.
fn train_epochs<F: Float>(
    settings: &TrainSettings,
    trainer: &mut Trainer<'_, F>,
    reporter: &mut Reporter,
    run_json: &serde_json::Value,
) -> Result<(), CliError> {
    while trainer.run_epoch(reporter)? {
        if let Some((path, Some(every))) = &settings.checkpoint {
            if trainer.epochs_done().is_multiple_of(*every) {
                checkpoint::save_training(path, trainer.model(), &trainer.state(), run_json)?;
            }
        }
    }
    Ok(())
}

/// The files a model saved at `path` consists of, for messages.
fn files_of(path: &Path) -> Result<String, checkpoint::CheckpointError> {
    let files: Vec<PathBuf> = ModelFormat::of(path)?.files(path);
    Ok(files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(" and "))
}

/// The second line of a run on a table: what was inferred from it.
fn table_line(preprocessing: &Preprocessing, summary: &FitSummary) -> String {
    let classes = &preprocessing.classes;
    let shown: Vec<&str> = classes.iter().take(10).map(String::as_str).collect();
    let more = if classes.len() > 10 { ", ..." } else { "" };
    let target = match preprocessing.target {
        Some(target) => format!(
            "target '{}' (regression; standardised with mean {:.6} and std {:.6})",
            preprocessing.label, target.center, target.scale
        ),
        None => format!(
            "label '{}' ({} classes: {}{more})",
            preprocessing.label,
            classes.len(),
            shown.join(", ")
        ),
    };
    let mut numeric = Vec::new();
    let mut categorical = Vec::new();
    for column in &preprocessing.columns {
        match column {
            InputColumn::Numeric { name, .. } => numeric.push(name.as_str()),
            InputColumn::Categorical { name, categories } => {
                let missing = if categories.contains(&None) {
                    " incl. missing"
                } else {
                    ""
                };
                categorical.push(format!("{name} ({} categories{missing})", categories.len()));
            }
        }
    }
    let mut line = format!(
        "table: {target}; {} numeric column{} ({} scaling, {} imputation)",
        numeric.len(),
        if numeric.len() == 1 { "" } else { "s" },
        preprocessing.scale,
        preprocessing.impute,
    );
    if !categorical.is_empty() {
        line.push_str(&format!(
            ", {} categorical: {}",
            categorical.len(),
            categorical.join(", ")
        ));
    }
    line.push_str(&format!(" -> {} features", preprocessing.features()));
    if !preprocessing.ignored.is_empty() {
        line.push_str(&format!("; ignored: {}", preprocessing.ignored.join(", ")));
    }
    if !summary.missing.is_empty() {
        let missing: Vec<String> = summary
            .missing
            .iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        line.push_str(&format!("; missing values: {}", missing.join(", ")));
    }
    line
}

/// Warnings about a table: ID-like columns, unseen categories in the test or validation
/// rows.
pub(super) fn table_warnings(fit: &TableFit) -> Vec<String> {
    let mut warnings: Vec<String> = fit
        .summary
        .id_like
        .iter()
        .map(|name| {
            format!("column '{name}' has a different value on every training row, like an ID: one-hot encoding it learns nothing that carries over (--ignore {name}?)")
        })
        .collect();
    for (set, report) in &fit.unseen {
        warnings.extend(unseen_warnings(set, report));
    }
    warnings
}

/// One warning per column with categories the model has not seen.
pub(super) fn unseen_warnings(set: &str, report: &TransformReport) -> Vec<String> {
    report
        .unseen
        .iter()
        .map(|(column, count, first)| {
            format!("{set} rows: column '{column}': {count} value{} not seen in training (first: '{first}'), encoded as all zeros", if *count == 1 { "" } else { "s" })
        })
        .collect()
}

/// The first line: data, architecture, optimizer and the workflow in force.
fn header<F: Float>(
    settings: &TrainSettings,
    dataset: &Dataset<F>,
    model: &MultiLayerPerceptron<F>,
    epochs_done: usize,
    threading: GemmThreading,
) -> String {
    let run = &settings.run;
    let config = &run.train;
    let architecture = match &run.layers {
        // A spec: its layers as built, and whether the per-core step can take them.
        Some(_) => {
            let (spec, input) = nabla::network::describe(model);
            let step = if model.is_perceptron() {
                ""
            } else {
                "; the per-core step and fused updates need a perceptron"
            };
            format!("[{spec}] on {input}{step},")
        }
        None => {
            let mut sizes = vec![model.in_features().to_string()];
            sizes.extend(run.hidden.iter().map(usize::to_string));
            sizes.push(model.out_features().to_string());
            format!("{} {}", sizes.join("-"), run.activation)
        }
    };
    let validation = dataset
        .validation
        .as_ref()
        .map_or_else(String::new, |v| format!(" / {} validation", v.y.len()));
    let mut line = format!(
        "nabla: {} ({} train{validation} / {} test rows), {architecture} {}, lr {}, batch {}, {} epochs, seed {}, {} thread{} ({}; gemm {threading}{})",
        run.data.name,
        dataset.train_y.len(),
        dataset.test_y.len(),
        F::NAME,
        config.lr,
        config.batch_size,
        config.epochs,
        config.seed,
        settings.threads,
        if settings.threads == 1 { "" } else { "s" },
        match &settings.thread_source {
            ThreadSource::Requested(threads) => format!("--threads {threads}"),
            source => source.to_string(),
        },
        if settings.gemm == GemmThreading::Auto { ", auto" } else { "" },
    );
    if config.optimizer != nabla::optim::OptimizerKind::Sgd {
        line.push_str(&format!(", {}", config.optimizer));
    }
    if config.schedule.kind != nabla::optim::schedule::ScheduleKind::Constant
        || config.schedule.warmup_epochs > 0
    {
        line.push_str(&format!(", {} schedule", config.schedule.kind));
        if config.schedule.warmup_epochs > 0 {
            line.push_str(&format!(
                " after {} warm-up epochs",
                config.schedule.warmup_epochs
            ));
        }
    }
    if let Some(patience) = config.patience {
        let monitored = if dataset.validation.is_some() {
            "val"
        } else {
            "train"
        };
        line.push_str(&format!(
            ", early stopping on {monitored} loss (patience {patience})"
        ));
    }
    if epochs_done > 0 {
        line.push_str(&format!(", resumed after epoch {epochs_done}"));
    }
    line
}

/// The final lines: the last epoch, and the best one when it is not the last.
fn report_end(
    settings: &TrainSettings,
    history: &History,
    reporter: &mut Reporter,
    started: Instant,
) {
    let Some(last) = history.epochs.last() else {
        return;
    };
    let peak = peak_memory_mb().map_or_else(String::new, |mb| format!(" | peak memory {mb:.0} MB"));
    let val = last
        .val
        .map_or_else(String::new, |v| format!(" | val {}", scores(&v)));
    reporter.say(&format!(
        "final: train {}{val} | test {} | {:.2} s{peak}",
        scores(&last.train),
        scores(&last.test),
        started.elapsed().as_secs_f64()
    ));
    if let (Some(best), true) = (
        history.best_epoch,
        settings.run.train.patience.is_some() || last.val.is_some(),
    ) {
        if let Some(stats) = history.epochs.iter().find(|stats| stats.epoch == best) {
            let which = if stats.val.is_some() { "val" } else { "train" };
            let kept = if history.restored_best {
                "; the model has its weights"
            } else {
                ""
            };
            let test = match stats.test.regression {
                Some(metrics) => format!("test r2 {:.4}", metrics.r2),
                None => format!("test acc {:.4}", stats.test.accuracy),
            };
            reporter.say(&format!(
                "best: epoch {best} ({which} loss {:.4}, {test}){kept}",
                stats.monitored_loss(),
            ));
        }
    }
}

/// `summary.json` of a run folder: final and best metrics, best epoch, times (the total
/// counts the epochs of the first `earlier_epochs`, run by earlier processes of a resumed
/// run, with this process's time), peak memory, and why the run stopped (`error` when it
/// failed).
fn write_summary(
    settings: &TrainSettings,
    history: Option<&History>,
    error: &str,
    started: Instant,
    earlier_epochs: usize,
) {
    let Some(out) = &settings.out else {
        return;
    };
    let stopped = match history.map(|h| h.stop) {
        None => "failed".to_string(),
        Some(Stop::Completed) => "completed".to_string(),
        Some(Stop::EarlyStopped { epoch }) => format!("early stopping after epoch {epoch}"),
        Some(Stop::Interrupted { epoch, batch }) => {
            format!("interrupted in epoch {epoch} after batch {batch}")
        }
    };
    let epochs = history.map(|h| h.epochs.clone()).unwrap_or_default();
    let best = history
        .and_then(|h| h.best_epoch)
        .and_then(|best| epochs.iter().find(|stats| stats.epoch == best));
    let summary = serde_json::json!({
        "stopped": stopped,
        "error": if error.is_empty() { serde_json::Value::Null } else { error.into() },
        "epochs": epochs.iter().filter(|e| !e.partial).count(),
        "final": epochs.last(),
        "best_epoch": best.map(|stats| stats.epoch),
        "best": best,
        "monitored": if epochs.first().is_some_and(|e| e.val.is_some()) { "val_loss" } else { "train_loss" },
        "restored_best": history.is_some_and(|h| h.restored_best),
        "seconds": {
            // This process's time, plus the epochs earlier processes ran (a resumed run).
            "total": started.elapsed().as_secs_f64()
                + epochs
                    .iter()
                    .filter(|e| e.epoch <= earlier_epochs)
                    .map(|e| e.train_seconds + e.eval_seconds)
                    .sum::<f64>(),
            "session": started.elapsed().as_secs_f64(),
            "train": epochs.iter().map(|e| e.train_seconds).sum::<f64>(),
            "eval": epochs.iter().map(|e| e.eval_seconds).sum::<f64>(),
        },
        "peak_memory_mb": peak_memory_mb(),
        "model": settings.save.as_ref().map(|p| p.display().to_string()),
    });
    if let Err(error) = RunFolder::write_json(&out.summary(), &summary) {
        tell(&format!("nabla: warning: {error}"));
    }
}

/// The process's peak resident memory (Linux's VmHWM), if the system reports it.
fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024.0)
}
