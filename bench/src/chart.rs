//! `ratios.svg`: a bar chart of `rt / peer` per workload variant.
//!
//! One group of bars per variant (x axis), one bar per peer, coloured by peer. The y axis is
//! logarithmic so that 2× faster and 2× slower are the same distance from the line at 1.0; each
//! bar grows from 1.0 towards its ratio, so bars hanging below the line are where rt leads and
//! bars standing above it are where rt trails. Each bar carries its ratio as text.
//!
//! Drawn with plotters' SVG backend only (no font libraries: text size is estimated).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One variant's ratios: `(short label, [(peer, rt/peer)])`.
pub type RatioGroup = (String, Vec<(String, f64)>);

/// The colour of a peer's bars (fixed per name so charts of different runs compare).
pub fn peer_colour(peer: &str) -> RGBColor {
    match peer {
        "go" => RGBColor(0x1f, 0x77, 0xb4),
        "rt-apo" => RGBColor(0xd6, 0x27, 0x28),
        "may" => RGBColor(0xff, 0x7f, 0x0e),
        "tokio" => RGBColor(0x2c, 0xa0, 0x2c),
        "corosensei" => RGBColor(0x94, 0x67, 0xbd),
        "std-thread" => RGBColor(0x8c, 0x56, 0x4b),
        "glibc" => RGBColor(0x7f, 0x7f, 0x7f),
        "mimalloc" => RGBColor(0xe3, 0x77, 0xc2),
        "jemalloc" => RGBColor(0xbc, 0xbd, 0x22),
        "mmap" => RGBColor(0x17, 0xbe, 0xcf),
        _ => RGBColor(0x44, 0x44, 0x44),
    }
}

/// A ratio as bar text: two decimals down to 0.1, then three significant digits.
pub fn ratio_text(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.2}")
    } else {
        let digits = (2 - r.log10().floor() as i32).clamp(3, 8) as usize;
        format!("{r:.digits$}")
    }
}

/// Width of the legend column right of the plot.
const LEGEND_WIDTH: i32 = 150;

/// The y range: covers every ratio and 1.0 with some room, within [1e-3, 1e3].
pub fn y_range(groups: &[RatioGroup]) -> (f64, f64) {
    let mut lo: f64 = 1.0;
    let mut hi: f64 = 1.0;
    for (_, bars) in groups {
        for (_, r) in bars {
            if r.is_finite() && *r > 0.0 {
                lo = lo.min(*r);
                hi = hi.max(*r);
            }
        }
    }
    ((lo / 1.6).max(1e-3), (hi * 1.6).min(1e3))
}

/// Renders the chart to an SVG string. Groups without bars still get their slot (labelled
/// "no ratio") so a missing rt number is visible rather than silently dropped.
pub fn render(groups: &[RatioGroup]) -> Result<String, String> {
    let n = groups.len().max(1);
    let bars: usize = groups.iter().map(|(_, b)| b.len().max(1)).sum();
    let width = (140 + LEGEND_WIDTH as usize + 34 * bars + 40 * n).max(900) as u32;
    let height = 600u32;
    let (lo, hi) = y_range(groups);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "rt / peer, median ratio per workload (below 1.0: rt faster or smaller)",
                ("sans-serif", 20),
            )
            .margin(15)
            .margin_right(15 + LEGEND_WIDTH)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n as f64, (lo..hi).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("rt / peer (log scale; below 1.0 = rt leads)")
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(|e| e.to_string())?;

        // Collect bars per peer so that each peer is one legend entry.
        let mut peers: Vec<String> = Vec::new();
        for (_, b) in groups {
            for (p, _) in b {
                if !peers.contains(p) {
                    peers.push(p.clone());
                }
            }
        }
        for peer in &peers {
            let colour = peer_colour(peer);
            let mut rects = Vec::new();
            for (i, (_, b)) in groups.iter().enumerate() {
                let k = b.len();
                for (j, (p, r)) in b.iter().enumerate() {
                    if p != peer || !r.is_finite() || *r <= 0.0 {
                        continue;
                    }
                    let x0 = i as f64 + 0.1 + 0.8 * j as f64 / k as f64;
                    let x1 = i as f64 + 0.1 + 0.8 * (j + 1) as f64 / k as f64 - 0.02;
                    let r = r.clamp(lo, hi);
                    rects.push(Rectangle::new([(x0, 1.0), (x1, r)], colour.filled()));
                }
            }
            chart.draw_series(rects).map_err(|e| e.to_string())?;
        }

        // The reference line at 1.0.
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 1.0), (n as f64, 1.0)],
                BLACK.stroke_width(2),
            )))
            .map_err(|e| e.to_string())?;

        // Ratio values on the bars, group labels under the axis.
        let value_style = TextStyle::from(("sans-serif", 11).into_font()).color(&BLACK);
        let label_style = TextStyle::from(("sans-serif", 13).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        for (i, (label, b)) in groups.iter().enumerate() {
            let k = b.len();
            for (j, (_, r)) in b.iter().enumerate() {
                if !r.is_finite() || *r <= 0.0 {
                    continue;
                }
                let xc = i as f64 + 0.1 + 0.8 * (j as f64 + 0.5) / k as f64;
                let (px, py) = chart.backend_coord(&(xc, r.clamp(lo, hi)));
                let (anchor, dy) = if *r >= 1.0 {
                    (VPos::Bottom, -2)
                } else {
                    (VPos::Top, 2)
                };
                root.draw_text(
                    &ratio_text(*r),
                    &value_style.pos(Pos::new(HPos::Center, anchor)),
                    (px, py + dy),
                )
                .map_err(|e| e.to_string())?;
            }
            if b.is_empty() {
                let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 1.0));
                root.draw_text(
                    "no ratio",
                    &value_style.pos(Pos::new(HPos::Center, VPos::Bottom)),
                    (px, py - 4),
                )
                .map_err(|e| e.to_string())?;
            }
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, lo));
            let mut parts = label.splitn(2, ' ');
            let first = parts.next().unwrap_or("");
            root.draw_text(first, &label_style, (px, py + 6))
                .map_err(|e| e.to_string())?;
            if let Some(rest) = parts.next() {
                root.draw_text(rest, &label_style, (px, py + 22))
                    .map_err(|e| e.to_string())?;
            }
        }

        // Legend: one swatch per peer in the right margin.
        let legend_style = TextStyle::from(("sans-serif", 13).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let lx = width as i32 - LEGEND_WIDTH;
        for (k, peer) in peers.iter().enumerate() {
            let y = 60 + 22 * k as i32;
            root.draw(&Rectangle::new(
                [(lx, y - 6), (lx + 12, y + 6)],
                peer_colour(peer).filled(),
            ))
            .map_err(|e| e.to_string())?;
            root.draw_text(peer, &legend_style, (lx + 18, y))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<RatioGroup> {
        vec![
            (
                "spawn gomaxprocs=1".into(),
                vec![
                    ("go".into(), 0.5),
                    ("may".into(), 2.0),
                    ("tokio".into(), 1.2),
                ],
            ),
            ("malloc threads=2".into(), vec![("glibc".into(), 0.25)]),
            ("parked".into(), vec![]),
        ]
    }

    #[test]
    fn y_range_includes_one_and_all_ratios() {
        let (lo, hi) = y_range(&sample());
        assert!(lo < 0.25 && hi > 2.0);
        assert_eq!(y_range(&[]), (1.0 / 1.6, 1.6));
    }

    #[test]
    fn small_ratios_keep_significant_digits() {
        assert_eq!(ratio_text(1.234), "1.23");
        assert_eq!(ratio_text(0.5), "0.50");
        assert_eq!(ratio_text(0.0055), "0.00550");
        assert_eq!(ratio_text(0.04), "0.0400");
    }

    #[test]
    fn y_range_is_clamped() {
        let g = vec![(
            "x".to_string(),
            vec![("go".to_string(), 1e9), ("may".to_string(), 1e-9)],
        )];
        assert_eq!(y_range(&g), (1e-3, 1e3));
    }

    #[test]
    fn renders_one_bar_per_ratio_and_the_labels() {
        let svg = render(&sample()).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for t in [
            "spawn",
            "gomaxprocs=1",
            "malloc",
            "threads=2",
            "0.50",
            "2.00",
            "0.25",
            "no ratio",
        ] {
            assert!(svg.contains(t), "missing {t}");
        }
        // Four bars in peer colours (plus legend swatches of the same colours).
        let go = format!("#{:02X}{:02X}{:02X}", 0x1f, 0x77, 0xb4);
        assert!(svg.contains(&go), "no go-coloured bar");
        let count = |c: RGBColor| {
            svg.matches(&format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2))
                .count()
        };
        for p in ["go", "may", "tokio", "glibc"] {
            assert!(count(peer_colour(p)) >= 2, "{p}: bar and legend");
        }
        assert_eq!(count(peer_colour("mmap")), 0);
    }

    #[test]
    fn renders_with_no_ratios_at_all() {
        let svg = render(&[("boot measure=wall".into(), vec![])]).unwrap();
        assert!(svg.contains("no ratio"));
        assert!(render(&[]).unwrap().starts_with("<svg"));
    }
}
