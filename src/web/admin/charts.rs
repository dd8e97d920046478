//! Charts as inline SVG, rendered on the server from the statistics' figures: grouped vertical
//! bars (hours, days, weekdays) and horizontal bars (categories, reasons, guards). Each chart
//! has a text alternative (`<title>` per bar, an `aria-label`) and sits beside a table of the
//! same figures, so nothing is only visible as a picture.
//!
//! Axis labels stay readable whatever their length: a label that does not fit its bar's width
//! is wrapped onto two lines, or, when even that does not fit, turned upright and cut short
//! with "…" (the whole text in its `<title>` tooltip and in the table beside the chart); the
//! labels of horizontal bars are cut short to their margin the same way. Label widths are
//! estimated from the characters (a CJK character is a full em, Latin about 0.56 em), which
//! needs no font metrics on the server.
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

/// The estimated width of `text` at `size` units: wide (CJK, full-width) characters a full em,
/// others 0.6 em.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 1.0 } else { 0.6 })
        .sum::<f64>()
        * size
}

/// `text` cut short with "…" to fit `width` at `size` (unchanged when it fits). A last word
/// after a space (a direction, 入 / 出) is kept whole, so labels that differ only there stay
/// apart: `东校区北门（… 入`.
fn fit(text: &str, size: f64, width: f64) -> String {
    if text_width(text, size) <= width {
        return text.to_string();
    }
    if let Some((head, tail)) = text.rsplit_once(' ') {
        let tail_width = text_width(tail, size) + text_width(" ", size);
        if !head.is_empty() && tail_width < width / 2.0 {
            return format!("{} {tail}", fit_end(head, size, width - tail_width));
        }
    }
    fit_end(text, size, width)
}

/// `text` cut at its end with "…" to fit `width`.
fn fit_end(text: &str, size: f64, width: f64) -> String {
    if text_width(text, size) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    for c in text.chars() {
        let next = format!("{out}{c}…");
        if text_width(&next, size) > width {
            break;
        }
        out.push(c);
    }
    format!("{out}…")
}

/// `text` split onto two lines that each fit `width` at `size`: at the space nearest the
/// middle, else at the middle character. `None` when no split fits.
fn two_lines(text: &str, size: f64, width: f64) -> Option<(String, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut splits: Vec<(usize, usize)> = chars
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_whitespace())
        .map(|(i, _)| (i, i + 1))
        .collect();
    if splits.is_empty() && chars.len() > 1 {
        splits.push((chars.len().div_ceil(2), chars.len().div_ceil(2)));
    }
    splits.sort_by_key(|(i, _)| i.abs_diff(chars.len() / 2));
    splits.into_iter().find_map(|(end, start)| {
        let a: String = chars[..end].iter().collect();
        let b: String = chars[start..].iter().collect();
        (text_width(&a, size) <= width && text_width(&b, size) <= width).then_some((a, b))
    })
}

/// How the labels under a column chart are laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LabelLayout {
    /// On one line, every `n`-th label.
    Flat(usize),
    /// On two lines.
    Wrapped,
    /// Upright (rotated a quarter turn), cut short to this length.
    Upright(f64),
}

/// The label layout for labels of `size` under groups `group` wide.
fn label_layout(labels: &[String], size: f64, group: f64) -> LabelLayout {
    let room = group - 4.0;
    let widest = labels
        .iter()
        .map(|l| text_width(l, size))
        .fold(0.0, f64::max);
    if widest <= room {
        LabelLayout::Flat(1)
    } else if labels.iter().all(|l| l.chars().count() <= 3) {
        // Numbers (hours, days): every other one.
        LabelLayout::Flat(2)
    } else if labels
        .iter()
        .all(|l| text_width(l, size) <= room || two_lines(l, size, room).is_some())
    {
        LabelLayout::Wrapped
    } else {
        LabelLayout::Upright(widest.min(110.0))
    }
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
    let base = 206.0_f64;
    let plot = 190.0_f64;
    let size = 11.0_f64;
    let n = labels.len().max(1) as f64;
    let group = (width - left - 8.0) / n;
    let bar = ((group - 4.0) / series.len().max(1) as f64).max(1.0);
    let layout = label_layout(labels, size, group);
    let height = match layout {
        LabelLayout::Flat(_) => 240.0,
        LabelLayout::Wrapped => 254.0,
        LabelLayout::Upright(len) => base + 12.0 + len,
    };
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
        let x = x0 + (group - 4.0) / 2.0;
        let title = format!("<title>{}</title>", esc(l));
        match layout {
            LabelLayout::Flat(every) => {
                if i % every == 0 {
                    svg.push_str(&format!(
                        "<text class=\"axis-label\" x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{title}{}</text>",
                        base + 15.0,
                        esc(l)
                    ));
                }
            }
            LabelLayout::Wrapped => {
                let (a, b) =
                    two_lines(l, size, group - 4.0).unwrap_or_else(|| (l.clone(), String::new()));
                svg.push_str(&format!(
                    "<text class=\"axis-label\" x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{title}\
                     <tspan x=\"{x:.1}\">{}</tspan><tspan x=\"{x:.1}\" dy=\"13\">{}</tspan></text>",
                    base + 15.0,
                    esc(&a),
                    esc(&b)
                ));
            }
            LabelLayout::Upright(len) => {
                let y = base + 8.0;
                svg.push_str(&format!(
                    "<text class=\"axis-label\" x=\"{:.1}\" y=\"{y:.1}\" font-size=\"11\" text-anchor=\"end\" \
                     transform=\"rotate(-90 {:.1} {y:.1})\">{title}{}</text>",
                    x + 4.0,
                    x + 4.0,
                    esc(&fit(l, size, len))
                ));
            }
        }
    }
    svg.push_str(&format!(
        "<line class=\"axis\" x1=\"{left}\" y1=\"{base}\" x2=\"{width}\" y2=\"{base}\"/>"
    ));
    html! {
        (legend(series))
        svg.chart.(if width < 600.0 { "half" } else { "full" }) xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (width) " " (height) } role="img" aria-label=(label) {
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
            "<text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\"><title>{}</title>{}</text>\
             <rect class=\"s{}\" x=\"{left}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"2\"><title>{} : {v}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" font-weight=\"700\">{v}</text>",
            left - 6.0,
            y + 15.0,
            esc(l),
            esc(&fit(l, 12.0, left - 10.0)),
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
        svg.chart.(if width < 600.0 { "half" } else { "full" }) xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (width) " " (height) } role="img" aria-label=(label) {
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
    fn long_labels_wrap_or_stand_upright_cut_short_and_short_ones_stay_flat() {
        let short: Vec<String> = vec!["北门 入".into(), "南门 出".into()];
        assert_eq!(label_layout(&short, 11.0, 90.0), LabelLayout::Flat(1));
        let long: Vec<String> = vec!["东校区北门 入".into(), "西校区南门 出".into()];
        assert_eq!(label_layout(&long, 11.0, 70.0), LabelLayout::Wrapped);
        let longer: Vec<String> = vec!["东校区北门（教学区主入口） 入".into(); 8];
        assert!(matches!(
            label_layout(&longer, 11.0, 40.0),
            LabelLayout::Upright(_)
        ));
        let hours: Vec<String> = (0..24).map(|h| h.to_string()).collect();
        assert_eq!(label_layout(&hours, 11.0, 15.0), LabelLayout::Flat(2));
        let cut = fit("东校区北门（教学区主入口） 入", 11.0, 60.0);
        assert!(
            cut.ends_with("… 入") && text_width(&cut, 11.0) <= 60.0,
            "{cut}"
        );
        let cut = fit("东校区北门教学区主入口", 11.0, 60.0);
        assert!(
            cut.ends_with('…') && text_width(&cut, 11.0) <= 60.0,
            "{cut}"
        );
        let svg = bars(
            "b",
            &[("非常非常非常非常长的拒绝原因说明".into(), 3)],
            0,
            420.0,
        )
        .into_string();
        assert!(
            svg.contains("<title>非常非常非常非常长的拒绝原因说明</title>"),
            "{svg}"
        );
        assert!(svg.contains('…'), "{svg}");
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
