//! `metrics.jsonl`: one JSON object per logged step, appended as training goes, and
//! `electra plot`'s SVG curves drawn from it.
//!
//! Each line is a flat object of numbers, always with `step`; the keys are whatever the loop
//! logs (`loss`, `mlm_loss`, `rtd_loss`, `lr`, `grad_norm`, `tokens_per_sec`, ...). Evaluation
//! lines carry an `eval_` prefix. A resumed run first drops lines past its checkpoint, so the
//! file never holds two values for one step.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::TrainError;

/// One logged record: `step` plus named values.
pub type Record = BTreeMap<String, f64>;

/// Appends records to `metrics.jsonl`.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens `path` for appending after dropping every line whose `step` is greater than
    /// `keep_through` (the step of the checkpoint a run resumes from; 0 for a new run).
    pub fn open(path: &Path, keep_through: u64) -> Result<Self, TrainError> {
        let io = |source| TrainError::from(electra_fs::FsError::new(path, source));
        if path.exists() {
            let kept: Vec<Record> = read_for_resume(path)?
                .into_iter()
                .filter(|r| r.get("step").is_some_and(|s| *s <= keep_through as f64))
                .collect();
            let mut text = String::new();
            for record in &kept {
                text.push_str(&serde_json::to_string(record).unwrap_or_default());
                text.push('\n');
            }
            electra_fs::write_atomic(path, text.as_bytes())?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record (one line) and flushes it.
    pub fn write(&mut self, record: &Record) -> Result<(), TrainError> {
        // One write of the whole line: a crash leaves whole lines or a torn last one.
        let mut line = serde_json::to_string(record).unwrap_or_default();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| {
                let error = electra_fs::FsError::new(&self.path, source);
                error.needing(line.len() as u64).into()
            })
    }
}

/// Reads every record of a `metrics.jsonl`; a malformed line is an error naming its number.
pub fn read(path: &Path) -> Result<Vec<Record>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Reads the records of a `metrics.jsonl` a run resumes: as [`read`], but a last line without
/// its newline (torn by a crash mid-append: every write ends its line) is dropped with a
/// warning.
fn read_for_resume(path: &Path) -> Result<Vec<Record>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    if complete.len() < text.len() {
        tracing::warn!(
            "{}: dropping an incomplete last line (an interrupted write)",
            path.display()
        );
    }
    parse(path, complete)
}

/// The records of `text`, read from `path`.
fn parse(path: &Path, text: &str) -> Result<Vec<Record>, TrainError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str::<Record>(line).map_err(|e| TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: format!("line {}: expected a JSON object of numbers: {e}", i + 1),
            })
        })
        .collect()
}

/// The panels `plot` draws when the metrics have them: (title, keys).
const PANELS: &[(&str, &[&str])] = &[
    (
        "losses",
        &["mlm_loss", "rtd_loss", "eval_mlm_loss", "eval_rtd_loss"],
    ),
    (
        "accuracy",
        &[
            "mlm_accuracy",
            "disc_accuracy",
            "disc_auc",
            "replaced_f1",
            "eval_disc_accuracy",
            "eval_disc_auc",
        ],
    ),
    ("learning rate", &["lr"]),
    ("gradient norm", &["grad_norm"]),
    ("tokens / s", &["tokens_per_sec"]),
];

/// One panel's curves: (metric name, points).
type Panel<'a> = (&'a str, Vec<(&'a str, Vec<(f64, f64)>)>);

/// Draws the training curves of `records` into an SVG file at `out`, one panel per group of
/// [`PANELS`] that has data. Returns the number of panels drawn.
pub fn plot(records: &[Record], out: &Path) -> Result<usize, TrainError> {
    let panels: Vec<Panel<'_>> = PANELS
        .iter()
        .map(|(title, keys)| {
            let series = keys
                .iter()
                .map(|k| {
                    let points: Vec<(f64, f64)> = records
                        .iter()
                        .filter_map(|r| Some((*r.get("step")?, *r.get(*k)?)))
                        .filter(|(_, y)| y.is_finite())
                        .collect();
                    (*k, points)
                })
                .filter(|(_, points)| !points.is_empty())
                .collect::<Vec<_>>();
            (*title, series)
        })
        .filter(|(_, series)| !series.is_empty())
        .collect();
    if panels.is_empty() {
        return Err(TrainError::InvalidConfig(format!(
            "nothing to plot into {}: no records with step and a known metric",
            out.display()
        )));
    }
    let plot_error = |e: String| TrainError::Checkpoint {
        path: out.to_path_buf(),
        message: format!("cannot draw the plot: {e}"),
    };
    let height = 300 * panels.len() as u32;
    // Drawn into a temporary file renamed over `out`: a crash never leaves half an SVG.
    electra_fs::write_atomic_with(out, |tmp| -> Result<(), TrainError> {
        let root = SVGBackend::new(tmp, (900, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(e.to_string()))?;
        let areas = root.split_evenly((panels.len(), 1));
        for ((title, series), area) in panels.iter().zip(areas.iter()) {
            let all = series.iter().flat_map(|(_, p)| p.iter());
            let (x0, x1, y0, y1) = all.fold(
                (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
                |(a, b, c, d), (x, y)| (a.min(*x), b.max(*x), c.min(*y), d.max(*y)),
            );
            let pad = ((y1 - y0).abs() * 0.05).max(1e-9);
            let mut chart = ChartBuilder::on(area)
                .caption(*title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
                .map_err(|e| plot_error(e.to_string()))?;
            chart
                .configure_mesh()
                .x_desc("step")
                .draw()
                .map_err(|e| plot_error(e.to_string()))?;
            for (i, (name, points)) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), color))
                    .map_err(|e| plot_error(e.to_string()))?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(|e| plot_error(e.to_string()))?;
        }
        root.present().map_err(|e| plot_error(e.to_string()))?;
        Ok(())
    })?;
    Ok(panels.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: u64, loss: f64) -> Record {
        Record::from([
            ("step".to_string(), step as f64),
            ("mlm_loss".to_string(), loss),
            ("lr".to_string(), 1e-3),
        ])
    }

    #[test]
    fn reopening_drops_steps_after_the_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.jsonl");
        let mut log = MetricsLog::open(&path, 0).expect("open");
        for step in 1..=5 {
            log.write(&record(step, 1.0 / step as f64)).expect("write");
        }
        drop(log);
        let mut log = MetricsLog::open(&path, 3).expect("reopen");
        log.write(&record(4, 0.0)).expect("write");
        let steps: Vec<f64> = read(&path)
            .expect("read")
            .iter()
            .map(|r| r["step"])
            .collect();
        assert_eq!(steps, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn plot_draws_one_panel_per_metric_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("curves.svg");
        let records: Vec<Record> = (1..=20).map(|s| record(s, 5.0 / s as f64)).collect();
        assert_eq!(plot(&records, &out).expect("plot"), 2);
        let svg = std::fs::read_to_string(&out).expect("svg");
        assert!(
            svg.contains("<svg") && svg.contains("mlm_loss"),
            "{}",
            &svg[..200]
        );
        let err = plot(&[], &out).expect_err("empty");
        assert!(err.to_string().contains("nothing to plot"), "{err}");
        // Written through a temporary file: nothing else is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["curves.svg"]);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, "{\"step\": 1}\nnot json\n").expect("write");
        let err = read(&path).expect_err("bad line");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn resuming_drops_a_line_torn_by_a_crash_but_not_a_malformed_whole_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, "{\"step\":1.0}\n{\"step\":2.0}\n{\"ste").expect("write");
        assert!(read(&path).is_err(), "plain reading names the torn line");
        let mut log = MetricsLog::open(&path, 5).expect("reopen");
        log.write(&record(3, 0.5)).expect("write");
        let steps: Vec<f64> = read(&path)
            .expect("read")
            .iter()
            .map(|r| r["step"])
            .collect();
        assert_eq!(steps, [1.0, 2.0, 3.0]);

        std::fs::write(&path, "{\"step\":1.0}\nnot json\n").expect("write");
        let err = MetricsLog::open(&path, 5).expect_err("malformed");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
