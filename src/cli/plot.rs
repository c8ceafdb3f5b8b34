//! `nabla plot`: loss and accuracy against epoch, train (solid) and test (dashed), one
//! colour per run, side by side in one SVG; or, with `--model`, that model's confusion
//! matrix on the test set as a heat map.

use plotters::prelude::*;

use nabla::atomic_file::{protect_input, write_bytes_atomically};
use nabla::train::{check_fit, predict, ClassificationReport, TrainError};
use nabla::{checkpoint, Float};

use super::args::PlotArgs;
use super::dtype::{run_in_returning, RunInFloatReturning};
use super::settings::DataChoice;

use super::log::{LogError, LogTable};
use super::output::say;
use super::run_folder::{claim_outputs, log_of, model_of, model_preprocessing};
use super::CliError;

/// One run's curves.
struct Curves {
    name: String,
    epochs: Vec<f64>,
    train_loss: Vec<f64>,
    test_loss: Vec<f64>,
    train_acc: Vec<f64>,
    test_acc: Vec<f64>,
    /// Whether the scores are R² (a regression run's log) rather than accuracies.
    r2: bool,
}

impl Curves {
    fn read(log: &LogTable) -> Result<Self, LogError> {
        let r2 = log.has("train_r2");
        let score = if r2 { "r2" } else { "acc" };
        Ok(Self {
            name: log.name(),
            epochs: log.finite_numbers("epoch")?,
            train_loss: log.numbers("train_loss")?,
            test_loss: log.numbers("test_loss")?,
            train_acc: log.numbers(&format!("train_{score}"))?,
            test_acc: log.numbers(&format!("test_{score}"))?,
            r2,
        })
    }
}

/// Reads the logs (or evaluates the model) and writes the SVG.
pub fn run(args: &PlotArgs) -> Result<(), CliError> {
    if let Some(model) = &args.model {
        protect_input(model);
    }
    for path in &args.logs {
        protect_input(&log_of(path));
    }
    let _lock = claim_outputs(&[("-o", &args.output)])?;
    let mut svg = String::new();
    let drawn = match &args.model {
        Some(_) => {
            let confusion = run_in_returning(args.dtype, args)?;
            draw_confusion(&confusion, &mut svg)
        }
        None => {
            let runs = args
                .logs
                .iter()
                .map(|path| LogTable::read(path).and_then(|log| Curves::read(&log)))
                .collect::<Result<Vec<_>, _>>()?;
            draw(&runs, &mut svg)
        }
    };
    drawn.map_err(|error| CliError::Plot {
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

/// The curves of `logs` (files or run folders) as an SVG document.
pub fn curves_svg(logs: &[std::path::PathBuf]) -> Result<String, CliError> {
    let runs = logs
        .iter()
        .map(|path| LogTable::read(path).and_then(|log| Curves::read(&log)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut svg = String::new();
    draw(&runs, &mut svg).map_err(|error| CliError::Plot {
        path: "curves.svg".into(),
        detail: error.to_string(),
    })?;
    Ok(svg)
}

/// `confusion` as a heat-map SVG document.
pub fn confusion_svg(confusion: &[Vec<usize>]) -> Result<String, CliError> {
    let mut svg = String::new();
    draw_confusion(confusion, &mut svg).map_err(|error| CliError::Plot {
        path: "confusion.svg".into(),
        detail: error.to_string(),
    })?;
    Ok(svg)
}

/// Size of the two panels, side by side.
const PANELS: (u32, u32) = (1280, 520);
/// Legend entries per line, and the height of a line, below the panels.
const LEGEND_COLUMNS: usize = 4;
const LEGEND_LINE: u32 = 20;

/// Draws the two panels into `svg`, epochs on an integer axis, and below them (never over
/// a curve) the legend: one colour per run, train solid and test dashed.
fn draw(runs: &[Curves], svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let legend_lines = runs.len().div_ceil(LEGEND_COLUMNS) as u32 + 1;
    let height = PANELS.1 + legend_lines * LEGEND_LINE + 16;
    let root = SVGBackend::with_string(svg, (PANELS.0, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (panels, legend) = root.split_vertically(PANELS.1);
    let (left, right) = panels.split_horizontally(PANELS.0 / 2);
    // Epochs are whole numbers: an integer axis ticks at 1, 2, ... or 5, 10, ..., never 2.5.
    let epoch = |value: f64| value.round() as i64;
    let max_epoch = runs
        .iter()
        .flat_map(|run| run.epochs.iter().copied())
        .map(epoch)
        .fold(2, i64::max);
    let max_loss = runs
        .iter()
        .flat_map(|run| run.train_loss.iter().chain(&run.test_loss).copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        * 1.05;
    // R² may be negative early on; the axis goes down to -1 at most.
    let any_r2 = runs.iter().any(|run| run.r2);
    let floor = if any_r2 { -1.0 } else { 0.0 };
    let min_acc = runs
        .iter()
        .flat_map(|run| run.train_acc.iter().chain(&run.test_acc).copied())
        .filter(|v| v.is_finite())
        .fold(1.0, f64::min)
        .clamp(floor, 0.95);
    let (loss_title, score_title) = match (any_r2, runs.iter().all(|run| run.r2)) {
        (false, _) => ("cross-entropy loss", "accuracy"),
        (true, true) => ("MSE (standardised target)", "R²"),
        (true, false) => ("loss", "accuracy / R²"),
    };
    let panels = [
        (&left, loss_title, 0.0..max_loss.max(1e-3), true),
        (&right, score_title, (min_acc - 0.02).max(floor)..1.0, false),
    ];
    for (area, title, range, is_loss) in panels {
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(1..max_epoch, range)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(max_epoch.min(10) as usize)
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
                    .map(|&e| epoch(e))
                    .zip(values.iter().copied())
                    .collect::<Vec<_>>()
            };
            chart.draw_series(LineSeries::new(points(train), colour.stroke_width(2)))?;
            chart.draw_series(DashedLineSeries::new(
                points(test),
                6,
                4,
                colour.stroke_width(2),
            ))?;
        }
    }
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    legend.draw(&Text::new(
        "solid: train, dashed: test",
        (16, 4),
        font.clone(),
    ))?;
    let column_width = (PANELS.0 as usize - 32) / LEGEND_COLUMNS;
    for (index, run) in runs.iter().enumerate() {
        let colour = Palette99::pick(index).to_rgba();
        let x = 16 + (index % LEGEND_COLUMNS * column_width) as i32;
        let y = ((index / LEGEND_COLUMNS + 1) as u32 * LEGEND_LINE) as i32 + 4;
        legend.draw(&PathElement::new(
            vec![(x, y + 7), (x + 24, y + 7)],
            colour.stroke_width(2),
        ))?;
        legend.draw(&Text::new(run.name.clone(), (x + 30, y), font.clone()))?;
    }
    root.present()?;
    Ok(())
}

impl RunInFloatReturning for &PlotArgs {
    type Output = Vec<Vec<usize>>;

    /// The test confusion matrix of `--model`.
    fn run<F: Float>(self) -> Result<Vec<Vec<usize>>, CliError> {
        let Some(path) = &self.model else {
            return Ok(Vec::new());
        };
        let model_file = model_of(path);
        let model = checkpoint::load::<F>(&model_file)?;
        let preprocessing = model_preprocessing(&model_file, &model)?;
        if preprocessing.as_ref().is_some_and(|p| p.target.is_some()) {
            return Err(super::settings::invalid(
                "--model",
                model_file.display(),
                "a classifier (a confusion matrix needs classes; this model predicts numbers)",
            ));
        }
        let seed = checkpoint::trained_record(&model_file)?
            .seed
            .unwrap_or(nabla::DEFAULT_SEED);
        let dataset = DataChoice::from_args(&self.data)?
            .load_data::<F>(seed, preprocessing.as_ref())?
            .dataset;
        check_fit(&model, &dataset)?;
        // One report, drawn as a heat map (a rectangle and a label a cell: about 300
        // bytes of SVG).
        ClassificationReport::check_size(dataset.classes, 1, 300).map_err(TrainError::from)?;
        let predictions = predict(&model, &dataset.test_x);
        Ok(
            ClassificationReport::new(dataset.test_y.view(), predictions.view(), dataset.classes)
                .confusion,
        )
    }
}

/// A heat map of `confusion` (rows: true labels, columns: predictions), each cell shaded
/// by its share of the row and labelled with its count.
fn draw_confusion(
    confusion: &[Vec<usize>],
    svg: &mut String,
) -> Result<(), Box<dyn std::error::Error>> {
    let classes = confusion.len().max(1);
    let side = (48 * classes + 120).min(1600) as u32;
    let root = SVGBackend::with_string(svg, (side, side)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = classes as f64;
    // Cell (label, prediction) spans x in [prediction, prediction + 1) and y in
    // [n - 1 - label, n - label): row 0 at the top. The class numbers sit in the margins.
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "confusion matrix (test): rows true label, columns predicted",
            ("sans-serif", 16),
        )
        .margin(12)
        .build_cartesian_2d(-1.0..n, 0.0..n + 1.0)?;
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    for class in 0..classes {
        let c = class as f64;
        chart.draw_series(std::iter::once(Text::new(
            class.to_string(),
            (c + 0.4, n + 0.6),
            font.clone(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            class.to_string(),
            (-0.6, n - c - 0.4),
            font.clone(),
        )))?;
    }
    for (label, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        let top = n - label as f64;
        for (prediction, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let shade = RGBColor(
                (255.0 * (1.0 - 0.8 * share)) as u8,
                (255.0 * (1.0 - 0.6 * share)) as u8,
                255,
            );
            let left = prediction as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(left, top - 1.0), (left + 1.0, top)],
                shade.filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                count.to_string(),
                (left + 0.3, top - 0.4),
                font.clone(),
            )))?;
        }
    }
    root.present()?;
    Ok(())
}
