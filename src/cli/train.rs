//! `nabla train`: checks every flag and output path, builds (or resumes) the run, trains
//! it epoch by epoch with progress shown and logged, writes checkpoints, and saves; on
//! Ctrl-C it stops after the current batch, logs the partial epoch, writes the checkpoint
//! and the model, and exits with status 130.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nabla::checkpoint::{self, ModelFormat};
use nabla::threads::{self, GemmThreading, ThreadSource};
use nabla::train::{History, Stop, Trainer, TrainingState};
use nabla::{Dataset, Float, MultiLayerPerceptron};
use serde::{Deserialize, Serialize};

use super::args::TrainArgs;
use super::dtype::{run_in, RunInFloat};
use super::log::EpochLog;
use super::output::tell;
use super::progress::Reporter;
use super::run_folder::{checkpoint_of, RunFolder};
use super::settings::{RunConfig, TrainSettings};
use super::signals::Interrupt;
use super::CliError;

/// What a run records about itself: its configuration plus where it ran; the `run`
/// entry of checkpoints and the folder's `config.json`.
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
    /// SHA-256 of each data file.
    data_sha256: BTreeMap<String, String>,
}

/// Validates the flags (with `--resume`, against the saved run), then trains in the
/// chosen float type.
pub fn run(args: &TrainArgs) -> Result<(), CliError> {
    let mut args = args.clone();
    let resume = args.resume.as_deref().map(checkpoint_of);
    let saved = match &resume {
        Some(path) => {
            let run = checkpoint::training_run(path)?;
            let record: RunRecord =
                serde_json::from_value(run).map_err(|error| CliError::ResumeDiffers {
                    flag: "checkpoint".into(),
                    saved: format!("unreadable run settings ({error})"),
                    given: "a checkpoint written by nabla train".into(),
                })?;
            Some(record)
        }
        None => None,
    };
    // Resuming a run folder continues in it, unless told otherwise.
    if let (Some(dir), None) = (&args.resume, &args.out) {
        if dir.is_dir() && args.log.is_none() && args.save.is_none() {
            args.out = Some(dir.clone());
        }
    }
    if let Some(out) = &args.out {
        RunFolder::new(out).prepare(resume.is_some())?;
    }
    let mut settings =
        TrainSettings::from_args(&args, saved.as_ref().map(|record| &record.config))?;
    settings.resume = resume;
    for warning in &settings.warnings {
        tell(&format!("nabla: warning: {warning}"));
    }
    threads::set_threads(Some(settings.threads), settings.gemm);
    run_in(settings.dtype, &(settings, saved))
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
    let mut sizes = vec![dataset.num_features()];
    sizes.extend(&settings.run.hidden);
    sizes.push(dataset.classes);
    if let Some(path) = &settings.resume {
        let (model, state, _) = checkpoint::load_training::<F>(path)?;
        let fresh = MultiLayerPerceptron::<F>::from_sizes(
            &sizes,
            settings.activation,
            nabla::Init::Zeros,
            0,
        )?;
        let architecture = |m: &MultiLayerPerceptron<F>| {
            serde_json::to_string(&checkpoint::Architecture::of(m).layers).unwrap_or_default()
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
    let mut model = MultiLayerPerceptron::<F>::from_sizes(
        &sizes,
        settings.activation,
        settings.init,
        settings.run.train.seed,
    )?;
    if let Some(path) = &settings.run.init_from {
        checkpoint::load_weights_into(&mut model, path)?;
    }
    Ok((model, None))
}

fn train_in<F: Float>(settings: &TrainSettings, saved: Option<&RunRecord>) -> Result<(), CliError> {
    let run = &settings.run;
    let dataset = run.data.load::<F>(run.train.seed)?;
    let record = RunRecord {
        nabla: env!("CARGO_PKG_VERSION").to_string(),
        config: run.clone(),
        threads: settings.threads,
        gemm: settings.gemm.to_string(),
        data_sha256: run.data.fingerprint()?,
    };
    if let Some(saved) = saved {
        if saved.data_sha256 != record.data_sha256 {
            return Err(CliError::ResumeDiffers {
                flag: "data".into(),
                saved: format!("{:?}", saved.data_sha256),
                given: format!("{:?}", record.data_sha256),
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
    if let Some(out) = &settings.out {
        RunFolder::write_json(&out.config(), &record)?;
    }
    let log = match (&settings.log, &state) {
        (Some(path), Some(state)) => Some(EpochLog::resume(path, settings, state.epoch)?),
        (Some(path), None) => Some(EpochLog::create(path, settings)?),
        (None, _) => None,
    };
    let show_bars = !settings.quiet && std::io::stdout().is_terminal();
    let epochs_done = state.as_ref().map_or(0, |state| state.epoch);
    let mut reporter = Reporter::new(
        run.train.epochs,
        settings.quiet,
        show_bars,
        log,
        Some(Interrupt::install()?),
    );
    let started = Instant::now();
    let mut trainer = match state {
        Some(state) => Trainer::resume(&mut model, &dataset, &run.train, state)?,
        None => Trainer::new(&mut model, &dataset, &run.train)?,
    };
    if !settings.quiet {
        let threading = trainer.threading();
        reporter.say(&header(
            settings,
            &dataset,
            trainer.model(),
            epochs_done,
            threading,
        ));
    }
    // The whole loop on the pool, once (see `Trainer::run_epoch`).
    let outcome = threads::on_pool(settings.threads, || {
        train_epochs(settings, &mut trainer, &mut reporter, &run_json)
    });
    reporter.finish();
    if let Err(error) = outcome {
        write_summary(settings, None, &error.to_string(), started);
        return Err(error);
    }
    let stop = trainer.stop();
    // The checkpoint of the run as it ended (interrupted, early-stopped or complete),
    // before early stopping puts the best weights back: resuming it continues the run.
    let end_checkpoint = settings.out.is_some() || matches!(stop, Some(Stop::Interrupted { .. }));
    if let (true, Some((path, _))) = (end_checkpoint, &settings.checkpoint) {
        checkpoint::save_training(path, trainer.model(), &trainer.state(), &run_json)?;
    }
    let interrupted_save = match (stop, &settings.save) {
        (Some(Stop::Interrupted { .. }), Some(path)) => {
            Some(checkpoint::save(trainer.model(), path))
        }
        _ => None,
    };
    let history = trainer.finish();
    // The model is saved even when the log could not be written (it stopped the run).
    let saved_files = match (&settings.save, interrupted_save) {
        (Some(path), Some(result)) => result.and_then(|()| files_of(path)),
        (Some(path), None) => checkpoint::save(&model, path).and_then(|()| files_of(path)),
        (None, _) => Ok(String::new()),
    };
    if let Some(error) = reporter.error.take() {
        return Err(error);
    }
    let saved_files = saved_files?;
    report_end(settings, &history, &mut reporter, started);
    write_summary(settings, Some(&history), "", started);
    match history.stop {
        Stop::Completed | Stop::EarlyStopped { .. } => {
            if !saved_files.is_empty() && !settings.quiet {
                reporter.say(&format!("saved {saved_files}"));
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
                message.push_str(&format!("; resume with --resume {}", path.display()));
            }
            Err(CliError::Interrupted(message))
        }
    }
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
    let mut sizes = vec![model.in_features().to_string()];
    sizes.extend(run.hidden.iter().map(usize::to_string));
    sizes.push(model.out_features().to_string());
    let validation = dataset
        .validation
        .as_ref()
        .map_or_else(String::new, |v| format!(" / {} validation", v.y.len()));
    let mut line = format!(
        "nabla: {} ({} train{validation} / {} test rows), {} {} {}, lr {}, batch {}, {} epochs, seed {}, {} thread{} ({}; gemm {threading}{})",
        run.data.name,
        dataset.train_y.len(),
        dataset.test_y.len(),
        sizes.join("-"),
        run.activation,
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
    let val = last.val.map_or_else(String::new, |v| {
        format!(" | val loss {:.4} acc {:.4}", v.loss, v.accuracy)
    });
    reporter.say(&format!(
        "final: train loss {:.4} acc {:.4}{val} | test loss {:.4} acc {:.4} | {:.2} s{peak}",
        last.train.loss,
        last.train.accuracy,
        last.test.loss,
        last.test.accuracy,
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
            reporter.say(&format!(
                "best: epoch {best} ({which} loss {:.4}, test acc {:.4}){kept}",
                stats.monitored_loss(),
                stats.test.accuracy
            ));
        }
    }
}

/// `summary.json` of a run folder: final and best metrics, best epoch, times, peak
/// memory, and why the run stopped (`error` when it failed).
fn write_summary(
    settings: &TrainSettings,
    history: Option<&History>,
    error: &str,
    started: Instant,
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
            "total": started.elapsed().as_secs_f64(),
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
