//! The throughput plot: merged pull requests per T against P(break), one line per strategy,
//! as SVG (plotters' SVG backend; no system font library needed).

use crate::sweep::Cell;
use plotters::prelude::*;

/// Line colours, one per strategy in order.
const COLOURS: [RGBColor; 8] = [
    RGBColor(0x44, 0x44, 0x44),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// Draws merged pull requests per T against p for the cells of flake rate `flake`, one line
/// per strategy in the order the cells name them; returns the SVG document.
///
/// # Errors
/// A message when plotters cannot draw (it should not, on an in-memory SVG).
pub fn svg(cells: &[Cell], flake: f64) -> Result<String, String> {
    let cells: Vec<&Cell> = cells.iter().filter(|c| c.flake == flake).collect();
    let mut names: Vec<&str> = Vec::new();
    for c in &cells {
        if !names.contains(&c.name) {
            names.push(c.name);
        }
    }
    let p_max = cells
        .iter()
        .map(|c| c.p_break)
        .fold(0.0, f64::max)
        .max(0.01);
    let y_max = cells
        .iter()
        .map(|c| c.report.merged_per_t())
        .fold(1.0, f64::max)
        * 1.1;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (800, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Merged pull requests per CI run (T), flake rate {flake}"),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..p_max * 1.05, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("p = P(a pull request breaks the build)")
            .y_desc("merged pull requests per T")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, name) in names.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let points: Vec<(f64, f64)> = cells
                .iter()
                .filter(|c| c.name == *name)
                .map(|c| (c.p_break, c.report.merged_per_t()))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, colour.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}
