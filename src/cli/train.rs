//! `nabla train`: checks every flag and output path, builds the model, trains it with
//! progress shown and logged, and saves; on Ctrl-C it stops after the current batch,
//! logs the partial epoch, saves, and exits with status 130.

use std::io::IsTerminal;
use std::time::Instant;

use nabla::train::{self, Stop};
use nabla::{checkpoint, threads, Float, MultiLayerPerceptron};

use super::args::TrainArgs;
use super::dtype::{run_in, RunInFloat};
use super::log::EpochLog;
use super::output::tell;
use super::progress::Reporter;
use super::settings::TrainSettings;
use super::signals::Interrupt;
use super::CliError;

/// Validates the flags, then trains in the chosen float type.
pub fn run(args: &TrainArgs) -> Result<(), CliError> {
    let settings = TrainSettings::from_args(args)?;
    for warning in &settings.warnings {
        tell(&format!("nabla: warning: {warning}"));
    }
    threads::set_threads(settings.threads, settings.gemm)?;
    run_in(settings.dtype, &settings)
}

impl RunInFloat for &TrainSettings {
    fn run<F: Float>(self) -> Result<(), CliError> {
        train_in::<F>(self)
    }
}

fn train_in<F: Float>(settings: &TrainSettings) -> Result<(), CliError> {
    let dataset = settings.data.load::<F>()?;
    let mut sizes = vec![dataset.num_features()];
    sizes.extend(&settings.hidden);
    sizes.push(dataset.classes);
    let mut model = MultiLayerPerceptron::<F>::from_sizes(
        &sizes,
        settings.activation,
        settings.init,
        settings.config.seed,
    )?;
    if let Some(path) = &settings.init_from {
        checkpoint::load_weights_into(&mut model, path)?;
    }
    let log = settings
        .log
        .as_deref()
        .map(|path| EpochLog::create(path, settings))
        .transpose()?;
    let show_bars = !settings.quiet && std::io::stdout().is_terminal();
    let interrupt = Interrupt::install()?;
    let mut reporter = Reporter::new(
        settings.config.epochs,
        settings.quiet,
        show_bars,
        log,
        Some(interrupt),
    );
    if !settings.quiet {
        reporter.say(&format!(
            "nabla: {} ({} train / {} test rows), {} {} {}, lr {}, batch {}, {} epochs, seed {}, {} threads",
            settings.data.name,
            dataset.train_y.len(),
            dataset.test_y.len(),
            sizes.iter().map(usize::to_string).collect::<Vec<_>>().join("-"),
            settings.activation,
            F::NAME,
            settings.config.lr,
            settings.config.batch_size,
            settings.config.epochs,
            settings.config.seed,
            settings.threads,
        ));
    }
    let started = Instant::now();
    let result = train::train_with(&mut model, &dataset, &settings.config, &mut reporter);
    reporter.finish();
    // Training diverged (the weights are NaN: nothing to save) or could not start.
    let history = result?;
    if let Some(last) = history.epochs.last() {
        let peak =
            peak_memory_mb().map_or_else(String::new, |mb| format!(" | peak memory {mb:.0} MB"));
        reporter.say(&format!(
            "final: train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.2} s{peak}",
            last.train.loss,
            last.train.accuracy,
            last.test.loss,
            last.test.accuracy,
            started.elapsed().as_secs_f64()
        ));
    }
    // The model is saved even when the log could not be written (it stopped the run).
    let saved = match &settings.save {
        Some(path) => checkpoint::save(&model, path).and_then(|()| {
            let files = checkpoint::ModelFormat::of(path)?.files(path);
            Ok(files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" and "))
        }),
        None => Ok(String::new()),
    };
    if let Some(error) = reporter.error.take() {
        return Err(error);
    }
    let saved = saved?;
    match history.stop {
        Stop::Completed => {
            if !saved.is_empty() && !settings.quiet {
                reporter.say(&format!("saved {saved}"));
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
            if !saved.is_empty() {
                message.push_str(&format!("; saved {saved}"));
            }
            Err(CliError::Interrupted(message))
        }
    }
}

/// The process's peak resident memory (Linux's VmHWM), if the system reports it.
fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024.0)
}
