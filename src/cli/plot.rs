//! `nabla plot`: loss and accuracy against epoch, train (solid) and test (dashed), one
//! colour per run, side by side in one SVG.

use plotters::prelude::*;

use super::args::PlotArgs;
use nabla::atomic_file::write_bytes_atomically;

use super::log::{LogError, LogTable};
use super::output::say;
use super::CliError;

/// One run's curves.
struct Curves {
    name: String,
    epochs: Vec<f64>,
    train_loss: Vec<f64>,
    test_loss: Vec<f64>,
    train_acc: Vec<f64>,
    test_acc: Vec<f64>,
}

impl Curves {
    fn read(log: &LogTable) -> Result<Self, LogError> {
        Ok(Self {
            name: log.name(),
            epochs: log.numbers("epoch")?,
            train_loss: log.numbers("train_loss")?,
            test_loss: log.numbers("test_loss")?,
            train_acc: log.numbers("train_acc")?,
            test_acc: log.numbers("test_acc")?,
        })
    }
}

/// Reads the logs and writes the SVG.
pub fn run(args: &PlotArgs) -> Result<(), CliError> {
    let runs = args
        .logs
        .iter()
        .map(|path| LogTable::read(path).and_then(|log| Curves::read(&log)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut svg = String::new();
    draw(&runs, &mut svg).map_err(|error| CliError::Plot {
        path: args.output.clone(),
        detail: error.to_string(),
    })?;
    write_bytes_atomically(&args.output, svg.as_bytes()).map_err(|source| CliError::Write {
        path: args.output.clone(),
        source,
    })?;
    say(&format!("wrote {}", args.output.display()))?;
    Ok(())
}

/// Draws the two panels into `svg`.
fn draw(runs: &[Curves], svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (1280, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(640);
    let max_epoch = runs
        .iter()
        .flat_map(|run| run.epochs.iter().copied())
        .fold(1.0, f64::max);
    let max_loss = runs
        .iter()
        .flat_map(|run| run.train_loss.iter().chain(&run.test_loss).copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        * 1.05;
    let min_acc = runs
        .iter()
        .flat_map(|run| run.train_acc.iter().chain(&run.test_acc).copied())
        .fold(1.0, f64::min)
        .clamp(0.0, 0.95);
    let panels = [
        (&left, "cross-entropy loss", 0.0..max_loss.max(1e-3), true),
        (&right, "accuracy", (min_acc - 0.02).max(0.0)..1.0, false),
    ];
    for (area, title, range, is_loss) in panels {
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(1.0..max_epoch.max(2.0), range)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (index, run) in runs.iter().enumerate() {
            let colour = Palette99::pick(index).to_rgba();
            let (train, test) = if is_loss {
                (&run.train_loss, &run.test_loss)
            } else {
                (&run.train_acc, &run.test_acc)
            };
            let points = |values: &Vec<f64>| {
                run.epochs
                    .iter()
                    .copied()
                    .zip(values.iter().copied())
                    .collect::<Vec<_>>()
            };
            chart
                .draw_series(LineSeries::new(points(train), colour.stroke_width(2)))?
                .label(format!("{} train", run.name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(DashedLineSeries::new(
                    points(test),
                    6,
                    4,
                    colour.stroke_width(2),
                ))?
                .label(format!("{} test", run.name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 6, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(if is_loss {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::LowerRight
            })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
