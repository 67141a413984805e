//! The Figure-4-style plot: GLUE score against pre-training FLOPs, one line per objective
//! (log-scaled FLOPs axis), random initialisation (0 FLOPs) as a dashed horizontal line. A small
//! hand-written SVG: the training curves come from `electra plot` instead.

use std::fmt::Write as _;

/// One line of the plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// (pre-training FLOPs, score) points; FLOPs 0 draws a horizontal reference line.
    pub points: Vec<(f64, f64)>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 7] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#7f7f7f",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `[low, high]` widened when empty or flat.
fn range(values: impl Iterator<Item = f64>, pad_flat: f64) -> (f64, f64) {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        low = low.min(v);
        high = high.max(v);
    }
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    if high - low < 1e-9 {
        return (low - pad_flat, high + pad_flat);
    }
    let pad = 0.05 * (high - low);
    (low - pad, high + pad)
}

/// The plot as an SVG document.
pub fn glue_against_flops(series: &[Series], title: &str) -> String {
    let logs = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, _)| *x > 0.0)
        .map(|(x, _)| x.log10());
    let (x0, x1) = range(logs, 0.5);
    let (y0, y1) = range(
        series.iter().flat_map(|s| s.points.iter().map(|(_, y)| *y)),
        1.0,
    );
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |log_x: f64| LEFT + (log_x - x0) / (x1 - x0) * pw;
    let py = |y: f64| TOP + (1.0 - (y - y0) / (y1 - y0)) * ph;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        LEFT + pw / 2.0,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    for i in 0..=4 {
        let y = y0 + (y1 - y0) * i as f64 / 4.0;
        let (right, at, label_x, label_y) = (LEFT + pw, py(y), LEFT - 6.0, py(y) + 4.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{right}" y1="{at:.1}" y2="{at:.1}" stroke="#ddd"/><text x="{label_x}" y="{label_y:.1}" text-anchor="end">{y:.1}</text>"##
        );
    }
    for decade in (x0.ceil() as i64)..=(x1.floor() as i64) {
        let x = px(decade as f64);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">1e{decade}</text>"##,
            TOP + ph,
            TOP + ph + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">pre-training FLOPs (log scale)</text>"#,
        LEFT + pw / 2.0,
        HEIGHT - 16.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {0})">GLUE score</text>"#,
        TOP + ph / 2.0
    );
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let legend_y = TOP + 14.0 + 20.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{legend_y}" fill="{colour}">{}</text>"#,
            LEFT + pw + 12.0,
            escape(&s.label)
        );
        let reference: Vec<f64> = s
            .points
            .iter()
            .filter(|(x, _)| *x <= 0.0)
            .map(|(_, y)| *y)
            .collect();
        for y in reference {
            let (right, at) = (LEFT + pw, py(y));
            let _ = writeln!(
                svg,
                r#"<line x1="{LEFT}" x2="{right}" y1="{at:.1}" y2="{at:.1}" stroke="{colour}" stroke-dasharray="6 4"/>"#
            );
        }
        let mut points: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|(x, _)| *x > 0.0)
            .map(|(x, y)| (px(x.log10()), py(*y)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if points.is_empty() {
            continue;
        }
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for (x, y) in points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{colour}"/>"#
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_are_lines_and_random_init_is_a_dashed_reference() {
        let svg = glue_against_flops(
            &[
                Series {
                    label: "electra".into(),
                    points: vec![(1e12, 60.0), (1e13, 70.0)],
                },
                Series {
                    label: "mlm".into(),
                    points: vec![(2e13, 65.0)],
                },
                Series {
                    label: "random-init".into(),
                    points: vec![(0.0, 50.0)],
                },
            ],
            "GLUE <dev>",
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("stroke-dasharray").count(), 1);
        assert!(
            svg.contains(">1e12<") && svg.contains(">1e13<"),
            "decade ticks"
        );
        assert!(svg.contains("GLUE &lt;dev&gt;"));
        // Higher scores are drawn higher: electra's second point above its first.
        let line = svg.lines().find(|l| l.contains("<polyline")).expect("line");
        let ys: Vec<f64> = line
            .split("points=\"")
            .nth(1)
            .expect("points")
            .trim_end_matches("\"/>")
            .split(' ')
            .map(|p| p.split(',').nth(1).expect("y").parse().expect("number"))
            .collect();
        assert!(ys[1] < ys[0], "{ys:?}");
    }

    #[test]
    fn a_single_point_or_nothing_still_draws() {
        let one = glue_against_flops(
            &[Series {
                label: "electra".into(),
                points: vec![(5e9, 40.0)],
            }],
            "t",
        );
        assert!(one.contains("<circle") && !one.contains("NaN"));
        let none = glue_against_flops(&[], "t");
        assert!(none.contains("</svg>") && !none.contains("NaN"));
    }
}
