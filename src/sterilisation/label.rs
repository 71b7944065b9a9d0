//! Printable pack labels: an SVG for a 62 × 29 mm label with a QR code that holds only the pack
//! code, and the cycle number, sterilisation date and operator initials that body-art codes
//! require on each pack (NEHA Body Art Model Code: date and cycle number on each pack; Texas 25 TAC
//! 229.406: sterilisation date and operator initials).

use chrono_tz::Tz;
use qrcode::{Color, EcLevel, QrCode};

use super::usecases::PackView;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The label of a pack, with dates in the clinic's time zone.
pub fn pack_label_svg(pack: &PackView, timezone: Tz) -> Result<String, qrcode::types::QrError> {
    let qr = QrCode::with_error_correction_level(pack.code.as_bytes(), EcLevel::M)?;
    let width = qr.width();
    // The QR code fills a 25 mm square with a quiet zone of two modules on each side.
    let module = 25.0 / (width + 4) as f64;
    let mut modules = String::new();
    for (i, color) in qr.to_colors().iter().enumerate() {
        if *color == Color::Dark {
            let (x, y) = (i % width, i / width);
            modules.push_str(&format!(
                r#"<rect x="{:.3}" y="{:.3}" width="{:.3}" height="{:.3}"/>"#,
                2.0 + (x + 2) as f64 * module,
                2.0 + (y + 2) as f64 * module,
                module + 0.01,
                module + 0.01
            ));
        }
    }
    let sterilised = pack
        .sterilised_at
        .with_timezone(&timezone)
        .format("%Y-%m-%d");
    let expiry = match pack.use_by {
        Some(day) => format!("Use by {}", day.format("%Y-%m-%d")),
        None => "Use while wrap intact".to_owned(),
    };
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="62mm" height="29mm" viewBox="0 0 62 29">
<rect width="62" height="29" fill="#fff"/>
<g fill="#000">{modules}</g>
<g font-family="DejaVu Sans, Arial, sans-serif" fill="#000">
<text x="30" y="8" font-size="5.2" font-weight="bold">{code}</text>
<text x="30" y="13.5" font-size="3.2">Cycle {cycle}</text>
<text x="30" y="18" font-size="3.2">Sterilised {sterilised}</text>
<text x="30" y="22.5" font-size="3.2">Operator {initials}</text>
<text x="30" y="27" font-size="3.2">{expiry}</text>
</g>
</svg>
"##,
        code = escape(&pack.code),
        cycle = pack.cycle_number,
        initials = escape(&pack.operator_initials),
        expiry = escape(&expiry),
    ))
}
