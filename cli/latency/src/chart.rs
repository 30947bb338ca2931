//! The SVG: time to first byte of every target as distributions side by side
//! (one panel per connection mode), and a stacked bar per target and mode of
//! where the time goes (the median of each phase).

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use super::probe::{PHASES, Phases};
use super::run::{Mode, Sample};

/// Series colours, by target (colour-blind safe: Tableau 10's first ones).
const TARGET_COLOURS: [RGBColor; 6] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0x9c, 0x75, 0x5f),
];

/// Phase colours, in [`PHASES`] order.
const PHASE_COLOURS: [RGBColor; 5] = [
    RGBColor(0xba, 0xb0, 0xac),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0x76, 0xb7, 0xb2),
];

/// Points drawn per distribution line at most.
const MAX_POINTS: usize = 400;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Writes the chart of `samples` (targets in `targets` order) to `path`.
pub fn write(
    path: &Path,
    title: &str,
    targets: &[String],
    modes: &[Mode],
    samples: &[Sample],
) -> crate::error::Result<()> {
    draw(path, title, targets, modes, samples).map_err(|e| crate::error::Error::Chart {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn draw(
    path: &Path,
    title: &str,
    targets: &[String],
    modes: &[Mode],
    samples: &[Sample],
) -> Result<(), Box<dyn std::error::Error>> {
    let bars = (modes.len() * targets.len()).max(1);
    let height = 520 + 60 * bars as u32 + 120;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 26))?;
    let (top, bottom) = root.split_vertically(480);
    let panels = top.split_evenly((1, modes.len().max(1)));
    let ttfb = |mode: Mode, target: &str| -> Vec<f64> {
        let mut v: Vec<f64> = samples
            .iter()
            .filter(|s| s.mode == mode && s.target == target && s.ok())
            .filter_map(|s| s.phases.map(|p| ms(p.ttfb())))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };

    for (area, &mode) in panels.iter().zip(modes) {
        let all: Vec<Vec<f64>> = targets.iter().map(|t| ttfb(mode, t)).collect();
        let xmax = all.iter().filter_map(|v| v.last()).fold(1.0f64, |a, &b| a.max(b)) * 1.05;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("time to first byte, {}", mode.name()), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..xmax, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("milliseconds")
            .y_desc("share of requests at or under")
            .label_style(("sans-serif", 14))
            .draw()?;
        for (i, (name, values)) in targets.iter().zip(&all).enumerate() {
            if values.is_empty() {
                continue;
            }
            let colour = TARGET_COLOURS[i % TARGET_COLOURS.len()];
            chart
                .draw_series(LineSeries::new(cdf(values), colour.stroke_width(3)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
    }

    // Where the time goes: medians of each phase, stacked.
    let mut rows: Vec<(String, [f64; 5])> = Vec::new();
    for &mode in modes {
        for t in targets {
            let phases: Vec<Phases> = samples
                .iter()
                .filter(|s| s.mode == mode && &s.target == t && s.ok())
                .filter_map(|s| s.phases)
                .collect();
            let mut medians = [0.0; 5];
            for (k, (_, _, f)) in PHASES.iter().enumerate() {
                let durations: Vec<Duration> = phases.iter().map(f).collect();
                medians[k] = crate::stats::summarize(&durations).p50;
            }
            rows.push((format!("{t}, {}", mode.name()), medians));
        }
    }
    let xmax = rows.iter().map(|(_, m)| m.iter().sum::<f64>()).fold(1.0f64, f64::max) * 1.1;
    let n = rows.len() as u32;
    let names: Vec<String> = rows.iter().map(|(name, _)| name.clone()).collect();
    let mut chart = ChartBuilder::on(&bottom)
        .caption("where the time goes (median of each phase)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(190)
        // A segmented 0..k has k + 1 slots.
        .build_cartesian_2d(0.0..xmax, (0u32..n.saturating_sub(1)).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("milliseconds")
        .label_style(("sans-serif", 14))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    for (k, (_, phase, _)) in PHASES.iter().enumerate() {
        let colour = PHASE_COLOURS[k];
        let bars = rows
            .iter()
            .enumerate()
            .filter(|(_, (_, m))| m[k] > 0.0)
            .map(|(i, (_, m))| {
                let x0: f64 = m[..k].iter().sum();
                let i = i as u32;
                let mut r = Rectangle::new(
                    [(x0, SegmentValue::Exact(i)), (x0 + m[k], SegmentValue::Exact(i + 1))],
                    colour.filled(),
                );
                r.set_margin(10, 10, 0, 0);
                r
            });
        chart
            .draw_series(bars)?
            .label(*phase)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The empirical distribution of sorted `values` as (value, share at or
/// under it), thinned to at most 400 points.
pub fn cdf(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    let step = n.div_ceil(MAX_POINTS).max(1);
    let mut points: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (sorted[i], (i + 1) as f64 / n as f64))
        .collect();
    if let Some(&last) = sorted.last()
        && points.last().is_none_or(|p| p.1 < 1.0)
    {
        points.push((last, 1.0));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_end_at_every_request_and_are_thinned() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        let points = cdf(&v);
        assert!(points.len() <= MAX_POINTS + 1);
        assert_eq!(points.first(), Some(&(1.0, 0.001)));
        assert_eq!(points.last(), Some(&(1000.0, 1.0)));
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        assert_eq!(cdf(&[5.0]), [(5.0, 1.0)]);
        assert!(cdf(&[]).is_empty());
    }
}
