//! Printable pack labels: an SVG with a QR code that holds only the pack code, and the cycle
//! number, sterilisation date and operator initials that body-art codes require on each pack
//! (NEHA Body Art Model Code: date and cycle number on each pack; Texas 25 TAC 229.406:
//! sterilisation date and operator initials).
//!
//! Every line is measured before it is placed: the text is set in the largest size (up to a
//! comfortable reading size) at which the longest line fits beside the QR code, so no field is
//! cut at any supported label size.

use chrono_tz::Tz;
use qrcode::{Color, EcLevel, QrCode};
use serde::Deserialize;
use utoipa::ToSchema;

use super::usecases::PackView;

/// The label stock a clinic prints on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
pub enum LabelSize {
    /// 62 × 29 mm (Brother DK-11209 and the like).
    #[default]
    #[serde(rename = "62x29")]
    W62H29,
    /// 54 × 25 mm (Dymo 11352 and the like).
    #[serde(rename = "54x25")]
    W54H25,
}

impl LabelSize {
    /// Width and height in millimetres.
    pub fn mm(self) -> (f64, f64) {
        match self {
            Self::W62H29 => (62.0, 29.0),
            Self::W54H25 => (54.0, 25.0),
        }
    }

    pub const ALL: [LabelSize; 2] = [Self::W62H29, Self::W54H25];
}

/// Margin kept clear at every edge, in millimetres.
const MARGIN: f64 = 1.5;
/// The largest body text, in millimetres (about 9 pt): bigger reads no better on a pack.
const MAX_BODY: f64 = 3.2;
/// The pack code is set larger and bold.
const CODE_SCALE: f64 = 1.5;

/// Advance widths of DejaVu Sans (the face the label names first), in units of 1/2048 em, for
/// the characters a label holds; anything else is measured as the widest letter.
fn advance(c: char, bold: bool) -> f64 {
    let regular = match c {
        ' ' => 651.0,
        '0'..='9' => 1303.0,
        '-' => 739.0,
        '.' | ',' => 651.0,
        ':' => 690.0,
        '/' => 690.0,
        'A' | 'V' => 1401.0,
        'B' => 1405.0,
        'C' => 1430.0,
        'D' => 1577.0,
        'E' => 1294.0,
        'F' => 1178.0,
        'G' => 1587.0,
        'H' => 1540.0,
        'I' | 'J' => 604.0,
        'K' => 1343.0,
        'L' => 1141.0,
        'M' => 1767.0,
        'N' => 1532.0,
        'O' | 'Q' => 1612.0,
        'P' => 1235.0,
        'R' => 1423.0,
        'S' => 1300.0,
        'T' | 'Y' => 1251.0,
        'U' => 1499.0,
        'W' => 2025.0,
        'X' | 'Z' => 1403.0,
        'a' => 1255.0,
        'b' | 'd' | 'g' | 'p' | 'q' => 1300.0,
        'c' => 1126.0,
        'e' => 1260.0,
        'f' => 721.0,
        'h' | 'n' | 'u' => 1298.0,
        'i' | 'j' | 'l' => 569.0,
        'k' => 1186.0,
        'm' => 1995.0,
        'o' => 1253.0,
        'r' => 842.0,
        's' => 1067.0,
        't' => 803.0,
        'v' | 'x' | 'y' => 1212.0,
        'w' => 1675.0,
        'z' => 1075.0,
        _ => 2025.0,
    };
    // DejaVu Sans Bold runs about a tenth wider.
    if bold {
        regular * 1.1
    } else {
        regular
    }
}

/// How wide `text` is when set at `size` millimetres.
pub fn text_width_mm(text: &str, size: f64, bold: bool) -> f64 {
    text.chars().map(|c| advance(c, bold)).sum::<f64>() / 2048.0 * size
}

/// One line of text placed on a label.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub x: f64,
    /// The baseline.
    pub y: f64,
    pub size: f64,
    pub bold: bool,
}

/// Where everything goes on a label of `size`: the QR code's square (x, y, side) and the lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    pub qr: (f64, f64, f64),
    pub lines: Vec<Line>,
}

/// The lines a pack's label carries, dates in the clinic's time zone.
pub fn label_text(pack: &PackView, timezone: Tz) -> Vec<String> {
    let sterilised = pack
        .sterilised_at
        .with_timezone(&timezone)
        .format("%Y-%m-%d");
    vec![
        pack.code.clone(),
        format!("Cycle {}", pack.cycle_number),
        format!("Sterilised {sterilised}"),
        format!("Operator {}", pack.operator_initials),
        match pack.use_by {
            Some(day) => format!("Use by {}", day.format("%Y-%m-%d")),
            None => "Use while wrap intact".to_owned(),
        },
    ]
}

/// Lays out `text` (the code first) beside a QR code on a label of `size`.
pub fn layout(text: &[String], size: LabelSize) -> Layout {
    let (width, height) = size.mm();
    let side = height - 2.0 * MARGIN;
    let x = MARGIN + side + 1.5;
    let room = width - x - MARGIN;
    // The code line counts as CODE_SCALE lines of body text; the gaps between lines are a
    // quarter of the body size.
    let lines = text.len().max(1) as f64;
    let by_height = (height - 2.0 * MARGIN) / (CODE_SCALE + (lines - 1.0) + 0.25 * lines);
    let by_width = text
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (scale, bold) = if i == 0 {
                (CODE_SCALE, true)
            } else {
                (1.0, false)
            };
            room / text_width_mm(t, scale, bold)
        })
        .fold(f64::INFINITY, f64::min);
    let body = MAX_BODY.min(by_height).min(by_width);
    let mut y = MARGIN;
    let placed = text
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (size, bold) = if i == 0 {
                (body * CODE_SCALE, true)
            } else {
                (body, false)
            };
            y += size + 0.25 * body;
            Line {
                text: t.clone(),
                x,
                y: y - 0.25 * body,
                size,
                bold,
            }
        })
        .collect();
    Layout {
        width,
        height,
        qr: (MARGIN, MARGIN, side),
        lines: placed,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The label of a pack, with dates in the clinic's time zone.
pub fn pack_label_svg(
    pack: &PackView,
    timezone: Tz,
    size: LabelSize,
) -> Result<String, qrcode::types::QrError> {
    let layout = layout(&label_text(pack, timezone), size);
    let qr = QrCode::with_error_correction_level(pack.code.as_bytes(), EcLevel::M)?;
    let modules_across = qr.width();
    let (qx, qy, side) = layout.qr;
    // The QR code fills its square with a quiet zone of two modules on each side.
    let module = side / (modules_across + 4) as f64;
    let mut modules = String::new();
    for (i, color) in qr.to_colors().iter().enumerate() {
        if *color == Color::Dark {
            let (x, y) = (i % modules_across, i / modules_across);
            modules.push_str(&format!(
                r#"<rect x="{:.3}" y="{:.3}" width="{:.3}" height="{:.3}"/>"#,
                qx + (x + 2) as f64 * module,
                qy + (y + 2) as f64 * module,
                module + 0.01,
                module + 0.01
            ));
        }
    }
    let text: String = layout
        .lines
        .iter()
        .map(|l| {
            format!(
                r#"<text x="{:.2}" y="{:.2}" font-size="{:.2}"{}>{}</text>"#,
                l.x,
                l.y,
                l.size,
                if l.bold { r#" font-weight="bold""# } else { "" },
                escape(&l.text)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}">
<rect width="{w}" height="{h}" fill="#fff"/>
<g fill="#000">{modules}</g>
<g font-family="DejaVu Sans, Arial, sans-serif" fill="#000">
{text}
</g>
</svg>
"##,
        w = layout.width,
        h = layout.height,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The longest a label's fields get: a six-digit cycle number, three initials, and the
    /// longer of the two shelf-life lines.
    fn widest() -> Vec<String> {
        vec![
            "WWW-WWW".into(),
            "Cycle 999999".into(),
            "Sterilised 2026-11-28".into(),
            "Operator WMW".into(),
            "Use while wrap intact".into(),
        ]
    }

    #[test]
    fn the_old_layout_cut_the_sterilisation_date() {
        // What the issue saw: 3.2 mm text from 30 mm across a 62 mm label.
        assert!(30.0 + text_width_mm("Sterilised 2026-11-28", 3.2, false) > 62.0 - 1.0);
    }

    #[test]
    fn every_line_fits_on_every_supported_label() {
        for size in LabelSize::ALL {
            let l = layout(&widest(), size);
            let (qx, qy, side) = l.qr;
            assert!(qx >= MARGIN && qy >= MARGIN && qy + side <= l.height - MARGIN + 1e-9);
            for line in &l.lines {
                let right = line.x + text_width_mm(&line.text, line.size, line.bold);
                assert!(
                    right <= l.width - MARGIN + 1e-9,
                    "{size:?}: {:?} runs to {right:.1} mm of {}",
                    line.text,
                    l.width
                );
                assert!(line.x >= qx + side, "{size:?}: text over the QR code");
                assert!(line.y - line.size >= 0.0 && line.y <= l.height - MARGIN + 1e-9);
                // Legible: no smaller than 2 mm (about 6 pt).
                assert!(
                    line.size >= 2.0,
                    "{size:?}: {:?} at {:.2} mm",
                    line.text,
                    line.size
                );
            }
            // Lines do not overlap.
            for w in l.lines.windows(2) {
                assert!(w[1].y - w[1].size >= w[0].y - 1e-9, "{size:?}: {w:?}");
            }
        }
    }
}
