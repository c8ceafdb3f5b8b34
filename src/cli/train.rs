//! `nabla train`: builds the model, trains it with a progress bar and per-epoch lines,
//! logs, and saves.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use nabla::train::{self, EpochStats, Observer};
use nabla::{checkpoint, threads, Float, MultiLayerPerceptron};

use super::args::TrainArgs;
use super::dtype::{run_in, RunInFloat};
use super::log::EpochLog;
use super::settings::TrainSettings;
use super::CliError;

/// Validates the flags, then trains in the chosen float type.
pub fn run(args: &TrainArgs) -> Result<(), CliError> {
    let settings = TrainSettings::from_args(args)?;
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
    let mut reporter = Reporter::new(settings, show_bars, log);
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
    if let Some(error) = reporter.log_error.take() {
        return Err(error);
    }
    let history = result?;
    let last = history.epochs.last().expect("at least one epoch");
    let peak = peak_memory_mb().map_or_else(String::new, |mb| format!(" | peak memory {mb:.0} MB"));
    println!(
        "final: train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.2} s{peak}",
        last.train.loss,
        last.train.accuracy,
        last.test.loss,
        last.test.accuracy,
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &settings.save {
        checkpoint::save(&model, path)?;
        if !settings.quiet {
            println!(
                "saved {} and {}",
                path.display(),
                checkpoint::sidecar_path(path).display()
            );
        }
    }
    Ok(())
}

/// The process's peak resident memory (Linux's VmHWM), if the system reports it.
fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024.0)
}

/// Two progress bars on stderr, one over the epochs and one over the current epoch's
/// batches (with the running loss); only drawn when stdout is a terminal.
struct Bars {
    all: MultiProgress,
    epochs: ProgressBar,
    batches: ProgressBar,
}

impl Bars {
    fn new(epochs: usize) -> Self {
        let all = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let style = |template: &str| {
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> ")
        };
        let epochs_bar = all.add(ProgressBar::new(epochs as u64));
        epochs_bar.set_style(style(
            "epochs  [{bar:30.green}] {pos}/{len} ({elapsed}, eta {eta})",
        ));
        let batches = all.add(ProgressBar::new(0));
        batches.set_style(style("batches [{bar:30.cyan/blue}] {pos}/{len} {msg}"));
        Self {
            all,
            epochs: epochs_bar,
            batches,
        }
    }
}

/// Draws the progress bars, prints the epoch lines and writes the log.
struct Reporter {
    bars: Option<Bars>,
    quiet: bool,
    epochs: usize,
    log: Option<EpochLog>,
    log_error: Option<CliError>,
    running_loss: f64,
}

impl Reporter {
    fn new(settings: &TrainSettings, show_bars: bool, log: Option<EpochLog>) -> Self {
        let epochs = settings.config.epochs;
        Self {
            bars: show_bars.then(|| Bars::new(epochs)),
            quiet: settings.quiet,
            epochs,
            log,
            log_error: None,
            running_loss: 0.0,
        }
    }

    /// A line on stdout, printed with the bars lifted so that they do not tear.
    fn say(&self, line: &str) {
        match &self.bars {
            Some(bars) => bars.all.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bars) = &self.bars {
            bars.batches.finish_and_clear();
            bars.epochs.finish_and_clear();
        }
    }
}

impl Observer for Reporter {
    fn epoch_started(&mut self, _epoch: usize, batches: usize) {
        self.running_loss = 0.0;
        if let Some(bars) = &self.bars {
            bars.batches.reset();
            bars.batches.set_length(batches as u64);
        }
    }

    fn batch_finished(&mut self, _epoch: usize, batch: usize, loss: f64) {
        self.running_loss += (loss - self.running_loss) / batch as f64;
        if let Some(bars) = &self.bars {
            bars.batches.inc(1);
            if batch.is_multiple_of(16) {
                bars.batches
                    .set_message(format!("loss {:.4}", self.running_loss));
            }
        }
    }

    fn epoch_finished(&mut self, stats: &EpochStats) {
        if !self.quiet {
            self.say(&format!(
                "epoch {:>3}/{}  train loss {:.4} acc {:.4}  test loss {:.4} acc {:.4}  {:.2} s",
                stats.epoch,
                self.epochs,
                stats.train.loss,
                stats.train.accuracy,
                stats.test.loss,
                stats.test.accuracy,
                stats.train_seconds + stats.eval_seconds
            ));
        }
        if let Some(bars) = &self.bars {
            bars.epochs.inc(1);
        }
        if let (Some(log), None) = (&mut self.log, &self.log_error) {
            if let Err(error) = log.append(stats) {
                self.log_error = Some(error.into());
            }
        }
    }
}
