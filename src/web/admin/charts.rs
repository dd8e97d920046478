//! Charts as inline SVG, rendered on the server from the statistics' figures: grouped vertical
//! bars (hours, days, weekdays) and horizontal bars (categories, reasons, guards). Each chart
//! has a text alternative (`<title>` per bar, an `aria-label`) and sits beside a table of the
//! same figures, so nothing is only visible as a picture.
//!
//! What it never does: load a script or a font, or compute a figure (it draws what it is given).

use maud::{Markup, PreEscaped, html};

/// One series of a grouped bar chart: its name and one value per label.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<i64>,
}

/// The series colours: the CSS classes `.s0`… in `admin.css` (bars and legend swatches) carry
/// them, since the pages' CSP allows no inline style.
const COLOURS: [&str; 4] = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5"];

/// Text escaped for SVG markup.
fn esc(text: &str) -> String {
    html! { (text) }.into_string()
}

/// A round upper bound for the axis and its tick step.
fn scale(max: i64) -> (i64, i64) {
    let max = max.max(1);
    let mut step = 1;
    for s in [
        1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000,
        100_000, 200_000, 500_000, 1_000_000,
    ] {
        step = s;
        if max <= s * 5 {
            break;
        }
    }
    let top = (max + step - 1) / step * step;
    (top, step)
}

fn legend(series: &[Series<'_>]) -> Markup {
    html! {
        @if series.len() > 1 {
            div.legend aria-hidden="true" {
                @for (i, s) in series.iter().enumerate() {
                    span class={ "s" (i % COLOURS.len()) } { (s.name) }
                }
            }
        }
    }
}

/// Grouped vertical bars: one group per label, one bar per series; `highlight` marks groups
/// (peak hours) with a band behind them. `width`: the drawing's width in its own units (760 for
/// a full-width panel, about 420 for a half-width one, so the text stays readable).
pub fn columns(
    label: &str,
    labels: &[String],
    series: &[Series<'_>],
    highlight: &[usize],
    width: f64,
) -> Markup {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter())
        .copied()
        .max()
        .unwrap_or(0);
    let (top, step) = scale(max);
    let left = 44.0_f64;
    let height = 240.0_f64;
    let base = 206.0_f64;
    let plot = 190.0_f64;
    let n = labels.len().max(1) as f64;
    let group = (width - left - 8.0) / n;
    let bar = ((group - 4.0) / series.len().max(1) as f64).max(1.0);
    let mut svg = String::new();
    let mut tick = 0;
    while tick <= top {
        let y = base - plot * tick as f64 / top as f64;
        svg.push_str(&format!(
            "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{width}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{tick}</text>",
            left - 5.0,
            y + 4.0
        ));
        tick += step;
    }
    for &i in highlight {
        let x = left + group * i as f64;
        svg.push_str(&format!(
            "<rect class=\"peak\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{group:.1}\" height=\"{plot:.1}\"/>",
            base - plot
        ));
    }
    let label_every = if group < 22.0 { 2 } else { 1 };
    for (i, l) in labels.iter().enumerate() {
        let x0 = left + group * i as f64 + 2.0;
        for (s, se) in series.iter().enumerate() {
            let v = se.values.get(i).copied().unwrap_or(0);
            let h = plot * v as f64 / top as f64;
            svg.push_str(&format!(
                "<rect class=\"s{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{} · {} : {v}</title></rect>",
                s % COLOURS.len(),
                x0 + bar * s as f64,
                base - h,
                (bar - 1.0).max(0.5),
                esc(l),
                esc(se.name),
            ));
        }
        if i % label_every == 0 {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                x0 + (group - 4.0) / 2.0,
                base + 15.0,
                esc(l)
            ));
        }
    }
    svg.push_str(&format!(
        "<line class=\"axis\" x1=\"{left}\" y1=\"{base}\" x2=\"{width}\" y2=\"{base}\"/>"
    ));
    html! {
        (legend(series))
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (width) " " (height) } role="img" aria-label=(label) {
            (PreEscaped(svg))
        }
    }
}

/// Horizontal bars, one per (label, value), largest first as given; `width` as for [`columns`].
pub fn bars(label: &str, items: &[(String, i64)], colour: usize, width: f64) -> Markup {
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0);
    let (top, _) = scale(max);
    let row = 24.0_f64;
    let left = (width * 0.3).min(190.0);
    let height = 8.0 + row * items.len().max(1) as f64;
    let mut svg = String::new();
    for (i, (l, v)) in items.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let w = (width - left - 60.0) * *v as f64 / top as f64;
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>\
             <rect class=\"s{}\" x=\"{left}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"2\"><title>{} : {v}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" font-weight=\"700\">{v}</text>",
            left - 6.0,
            y + 15.0,
            esc(l),
            colour % COLOURS.len(),
            row - 6.0,
            esc(l),
            left + w + 5.0,
            y + 15.0,
        ));
    }
    svg.push_str(&format!(
        "<line class=\"axis\" x1=\"{left}\" y1=\"2\" x2=\"{left}\" y2=\"{:.1}\"/>",
        height - 2.0
    ));
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (width) " " (height) } role="img" aria-label=(label) {
            (PreEscaped(svg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legend_takes_its_colours_from_classes_not_inline_styles() {
        let series = [
            Series {
                name: "入校",
                values: vec![1],
            },
            Series {
                name: "出校",
                values: vec![2],
            },
        ];
        let html = legend(&series).into_string();
        assert!(!html.contains("style="), "{html}");
        assert!(html.contains("class=\"s1\""), "{html}");
    }

    #[test]
    fn the_axis_is_a_round_number_at_or_above_the_largest_value() {
        assert_eq!(scale(0), (1, 1));
        assert_eq!(scale(4), (4, 1));
        assert_eq!(scale(7), (8, 2));
        assert_eq!(scale(23), (25, 5));
        assert_eq!(scale(1234), (1250, 250));
    }

    #[test]
    fn every_bar_carries_its_value_as_text() {
        let svg = columns(
            "flows",
            &["0".into(), "1".into()],
            &[Series {
                name: "入",
                values: vec![3, 0],
            }],
            &[0],
            760.0,
        )
        .into_string();
        assert!(svg.contains("<title>0 · 入 : 3</title>"), "{svg}");
        assert!(svg.contains("class=\"peak\""));
    }
}
