//! What a training run shows and records as it goes: two progress bars on stderr (only
//! when stdout is a terminal), one line per epoch on stdout, one log row per epoch, and
//! the answer to "stop now?" when a signal arrived.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use nabla::train::{EpochStats, Evaluation, Observer};

use super::log::EpochLog;
use super::output::say;
use super::signals::Interrupt;
use super::CliError;

/// Two progress bars on stderr, one over the epochs and one over the current epoch's
/// batches (with the running loss).
struct Bars {
    all: MultiProgress,
    epochs: ProgressBar,
    batches: ProgressBar,
}

impl Bars {
    fn new(epochs: usize) -> Self {
        let all = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let style = |template: &str| {
            // Cannot fail: the templates are constants of this file.
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

/// Draws the progress bars, prints the epoch lines, writes the log and watches for
/// signals. Errors met while observing (a full disk under the log) are kept for the end.
pub struct Reporter {
    bars: Option<Bars>,
    quiet: bool,
    epochs: usize,
    log: Option<EpochLog>,
    interrupt: Option<Interrupt>,
    /// The first error met while observing.
    pub error: Option<CliError>,
    running_loss: f64,
}

impl Reporter {
    /// A reporter for a run of `epochs` epochs.
    pub fn new(
        epochs: usize,
        quiet: bool,
        show_bars: bool,
        log: Option<EpochLog>,
        interrupt: Option<Interrupt>,
    ) -> Self {
        Self {
            bars: show_bars.then(|| Bars::new(epochs)),
            quiet,
            epochs,
            log,
            interrupt,
            error: None,
            running_loss: 0.0,
        }
    }

    /// A line on stdout, printed with the bars lifted so that they do not tear.
    pub fn say(&mut self, line: &str) {
        let result = match &self.bars {
            Some(bars) => bars.all.suspend(|| say(line)),
            None => say(line),
        };
        if let Err(error) = result {
            self.error.get_or_insert(error);
        }
    }

    /// Clears the bars, leaving the terminal line clean.
    pub fn finish(&self) {
        if let Some(bars) = &self.bars {
            bars.batches.finish_and_clear();
            bars.epochs.finish_and_clear();
        }
    }
}

/// One set's numbers: `loss 0.1234 acc 0.9500`, or for regression `loss 0.1234 rmse
/// 41.2 mae 33.0 r2 0.512` (the loss in standardised units, the rest in the target's).
pub(super) fn scores(evaluation: &Evaluation) -> String {
    match evaluation.regression {
        Some(metrics) => format!(
            "loss {:.4} rmse {:.4} mae {:.4} r2 {:.4}",
            evaluation.loss, metrics.rmse, metrics.mae, metrics.r2
        ),
        None => format!("loss {:.4} acc {:.4}", evaluation.loss, evaluation.accuracy),
    }
}

/// `epoch   3/50  train loss ... acc ...  [val loss ... acc ...]  test loss ... acc ...
/// [lr ...]  0.61 s`, then, with early stopping, whether the monitored loss improved.
fn epoch_line(stats: &EpochStats, epochs: usize) -> String {
    let mut line = format!(
        "epoch {:>3}/{}  train {}",
        stats.epoch,
        epochs,
        scores(&stats.train)
    );
    if let Some(val) = stats.val {
        line.push_str(&format!("  val {}", scores(&val)));
    }
    line.push_str(&format!(
        "  test {}  lr {:.3e}  {:.2} s",
        scores(&stats.test),
        stats.lr,
        stats.train_seconds + stats.eval_seconds
    ));
    if stats.partial {
        line.push_str(&format!("  (partial: {} batches)", stats.batches));
    }
    if let Some(waiting) = stats.epochs_without_improvement {
        let monitored = if stats.val.is_some() { "val" } else { "train" };
        if waiting == 0 {
            line.push_str(&format!("  {monitored} loss improved"));
        } else {
            line.push_str(&format!("  {monitored} loss not improved for {waiting}"));
        }
    }
    line
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
            self.say(&epoch_line(stats, self.epochs));
        }
        if let Some(bars) = &self.bars {
            bars.epochs.inc(1);
        }
        if let Some(log) = &mut self.log {
            if let Err(error) = log.append(stats) {
                self.error.get_or_insert(error.into());
                // A log that cannot be written stops the run: the user asked for it.
                self.log = None;
            }
        }
    }

    fn should_stop(&mut self) -> bool {
        self.error.is_some() || self.interrupt.as_ref().is_some_and(Interrupt::requested)
    }
}
