//! The SVG: dollars per million events against events per request, one
//! line per path, at one monthly volume and window.

use std::path::Path as FilePath;

use plotters::prelude::*;

use super::bill::Path;

/// Series colours, by path (Tableau 10's first ones).
const COLOURS: [RGBColor; 5] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0xf2, 0x8e, 0x2b),
];

/// One path's line: `(events per request, dollars per million events)`.
pub type Line = (Path, Vec<(f64, f64)>);

/// Writes the chart to `path`.
pub fn write(path: &FilePath, title: &str, lines: &[Line]) -> crate::error::Result<()> {
    draw(path, title, lines).map_err(|e| crate::error::Error::Chart {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn draw(path: &FilePath, title: &str, lines: &[Line]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let xs = lines.iter().flat_map(|(_, p)| p.iter().map(|&(x, _)| x));
    let xmax = xs.clone().fold(1.0f64, f64::max);
    let xmin = xs.fold(xmax, f64::min).max(1.0);
    let ymax = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold(0.1f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((xmin..xmax).log_scale(), 0.0..ymax)?;
    chart
        .configure_mesh()
        .x_desc("events per request")
        .y_desc("US$ per million events (whole bill)")
        .label_style(("sans-serif", 14))
        .y_label_formatter(&|y| format!("${y:.2}"))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for (i, (p, points)) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(3)))?
            .label(p.describe())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3)));
        chart.draw_series(points.iter().map(|&(x, y)| Circle::new((x, y), 4, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
