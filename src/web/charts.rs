//! Charts drawn on the server as inline SVG: no chart library in the browser, and nothing in
//! them but numbers and escaped text. Each has a title and a description for screen readers, and
//! the same figures are in a table beside it.

use std::fmt::Write;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 36.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;

/// A column of a bar chart: its label, its total, and how much of it is marked (failed loads,
/// overridden starts).
pub struct Column {
    pub label: String,
    pub total: u32,
    pub marked: u32,
}

/// Bars of `total` with the `marked` part in the warning colour.
pub fn bars(title: &str, marked_as: &str, columns: &[Column]) -> String {
    let max = columns.iter().map(|c| c.total).max().unwrap_or(0).max(1);
    let plot_h = HEIGHT - BOTTOM - TOP;
    let step = (WIDTH - LEFT) / columns.len().max(1) as f64;
    let bar_w = (step * 0.7).max(2.0);
    let total: u32 = columns.iter().map(|c| c.total).sum();
    let marked: u32 = columns.iter().map(|c| c.marked).sum();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{t}</title><desc id="{id}-d">{total} in all, {marked} {m}.</desc>"#,
        id = slug(title),
        t = escape(title),
        m = escape(marked_as),
    );
    // Axis and its top value.
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{y}" stroke="#8c959f"/><line x1="{LEFT}" y1="{y}" x2="{WIDTH}" y2="{y}" stroke="#8c959f"/><text x="4" y="{ty}">{max}</text><text x="4" y="{y}">0</text>"##,
        y = HEIGHT - BOTTOM,
        ty = TOP + 10.0,
    );
    let every = (columns.len() / 8).max(1);
    for (i, c) in columns.iter().enumerate() {
        let x = LEFT + step * i as f64 + (step - bar_w) / 2.0;
        let h = plot_h * f64::from(c.total) / f64::from(max);
        let hm = plot_h * f64::from(c.marked) / f64::from(max);
        let base = HEIGHT - BOTTOM;
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{h:.1}" fill="#0b5c6b"><title>{}: {} ({} {})</title></rect>"##,
            base - h,
            escape(&c.label),
            c.total,
            c.marked,
            escape(marked_as)
        );
        if c.marked > 0 {
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{hm:.1}" fill="#b3261e"/>"##,
                base - hm
            );
        }
        if i % every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{:.1}">{}</text>"#,
                HEIGHT - 8.0,
                escape(&c.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A point on a timeline: where along it (0 to 1), its label and whether it is good, bad or
/// neither.
pub struct Dot {
    pub at: f64,
    pub label: String,
    pub tone: Tone,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Neutral,
}

/// Results along a span of time, one dot each, failures raised and red.
pub fn timeline(title: &str, start: &str, end: &str, dots: &[Dot]) -> String {
    let mut svg = String::new();
    let bad = dots.iter().filter(|d| d.tone == Tone::Bad).count();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} 90" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{t}</title><desc id="{id}-d">{n} results, {bad} failed.</desc>"#,
        id = slug(title),
        t = escape(title),
        n = dots.len(),
    );
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="50" x2="{w}" y2="50" stroke="#8c959f"/><text x="{LEFT}" y="84">{}</text><text x="{e}" y="84" text-anchor="end">{}</text>"##,
        escape(start),
        escape(end),
        w = WIDTH - 8.0,
        e = WIDTH - 8.0,
    );
    for d in dots {
        let x = LEFT + (WIDTH - LEFT - 16.0) * d.at.clamp(0.0, 1.0);
        let (y, fill) = match d.tone {
            Tone::Good => (50.0, "#1a7f37"),
            Tone::Bad => (22.0, "#b3261e"),
            Tone::Neutral => (50.0, "#8c959f"),
        };
        let _ = write!(
            svg,
            r#"<circle cx="{x:.1}" cy="{y}" r="6" fill="{fill}"><title>{}</title></circle>"#,
            escape(&d.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_marked_parts_drawn() {
        let svg = bars(
            "Loads of <Lisa>",
            "failed",
            &[
                Column {
                    label: "w/c 1 Dec".into(),
                    total: 4,
                    marked: 1,
                },
                Column {
                    label: "w/c 8 Dec".into(),
                    total: 0,
                    marked: 0,
                },
            ],
        );
        assert!(svg.contains("Loads of &lt;Lisa&gt;"));
        assert!(!svg.contains("<Lisa>"));
        assert!(svg.contains("5 in all") || svg.contains("4 in all, 1 failed"));
        assert_eq!(svg.matches("#b3261e").count(), 1);
    }
}
