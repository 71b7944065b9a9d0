//! GS1 element strings as barcode scanners type them (GS1-128 and GS1 DataMatrix), with or
//! without parentheses around the application identifiers (AIs), with the FNC1 group separator
//! (ASCII 29) after variable-length fields. Only well-formed strings are accepted: an unknown AI
//! or a malformed value is an error, never a guess.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The group separator scanners send for FNC1.
pub const GS: char = '\u{1d}';

/// What a scan of a box yields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Scan {
    /// AI (01): the 14-digit GTIN, check digit verified.
    pub gtin: Option<String>,
    /// AI (17): the expiry date (a day of 00 means the end of the month).
    pub expiry: Option<NaiveDate>,
    /// AI (10): the batch or lot number.
    pub lot: Option<String>,
    /// AI (21): the serial number.
    pub serial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    #[error("the barcode is empty")]
    Empty,
    #[error("unknown application identifier {ai} at position {position}")]
    UnknownAi { ai: String, position: usize },
    #[error("({ai}) {reason}")]
    BadValue { ai: &'static str, reason: String },
    #[error("({ai}) appears twice")]
    Repeated { ai: &'static str },
    #[error("malformed element string at position {position}: {reason}")]
    Malformed {
        position: usize,
        reason: &'static str,
    },
}

#[derive(Debug, Clone, Copy)]
enum Length {
    Fixed(usize),
    Variable(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Digits,
    Date,
    Text,
}

/// The AIs found on needle-cartridge, pigment and supply boxes. Others are refused rather than
/// misread.
const AIS: &[(&str, Length, Kind)] = &[
    ("00", Length::Fixed(18), Kind::Digits),
    ("01", Length::Fixed(14), Kind::Digits),
    ("02", Length::Fixed(14), Kind::Digits),
    ("10", Length::Variable(20), Kind::Text),
    ("11", Length::Fixed(6), Kind::Date),
    ("13", Length::Fixed(6), Kind::Date),
    ("15", Length::Fixed(6), Kind::Date),
    ("16", Length::Fixed(6), Kind::Date),
    ("17", Length::Fixed(6), Kind::Date),
    ("21", Length::Variable(20), Kind::Text),
    ("22", Length::Variable(20), Kind::Text),
    ("30", Length::Variable(8), Kind::Digits),
    ("37", Length::Variable(8), Kind::Digits),
    ("240", Length::Variable(30), Kind::Text),
    ("241", Length::Variable(30), Kind::Text),
    ("710", Length::Variable(20), Kind::Text),
    ("711", Length::Variable(20), Kind::Text),
    ("712", Length::Variable(20), Kind::Text),
    ("713", Length::Variable(20), Kind::Text),
    ("714", Length::Variable(20), Kind::Text),
];

fn lookup(ai: &str) -> Option<(&'static str, Length, Kind)> {
    AIS.iter().find(|(a, _, _)| *a == ai).copied()
}

/// GS1 General Specifications character set 82, allowed in alphanumeric AIs.
fn is_cset82(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!\"%&'()*+,-./:;<=>?_".contains(c)
}

/// The GS1 mod-10 check digit over all digits but the last.
pub fn gtin_check_digit(body: &str) -> Option<u32> {
    let mut sum = 0;
    for (i, c) in body.chars().rev().enumerate() {
        let d = c.to_digit(10)?;
        sum += if i % 2 == 0 { d * 3 } else { d };
    }
    Some((10 - sum % 10) % 10)
}

/// YYMMDD with GS1's century rule (within 49 years back and 50 ahead of `today`) and day 00 as
/// the last day of the month.
fn parse_date(ai: &'static str, value: &str, today: NaiveDate) -> Result<NaiveDate, Gs1Error> {
    let bad = |reason: &str| Gs1Error::BadValue {
        ai,
        reason: reason.to_owned(),
    };
    let n = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| bad("must be a date as YYMMDD"))
    };
    let (yy, mm, dd) = (n(&value[0..2])? as i32, n(&value[2..4])?, n(&value[4..6])?);
    let this_year = today.year();
    let mut year = this_year - this_year % 100 + yy;
    if year - this_year >= 51 {
        year -= 100;
    } else if this_year - year > 49 {
        year += 100;
    }
    if !(1..=12).contains(&mm) {
        return Err(bad("has a month outside 01–12"));
    }
    if dd == 0 {
        let next = if mm == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, mm + 1, 1)
        };
        return next
            .and_then(|d| d.pred_opt())
            .ok_or_else(|| bad("is not a valid date"));
    }
    NaiveDate::from_ymd_opt(year, mm, dd).ok_or_else(|| bad("is not a valid date"))
}

/// Splits the scan into (AI, value) pairs, in either notation.
fn elements(input: &str) -> Result<Vec<(String, String, usize)>, Gs1Error> {
    let mut text = input.trim_matches(|c: char| c == '\r' || c == '\n' || c == ' ');
    // Symbology identifiers some scanners prefix: ]C1 GS1-128, ]d2 DataMatrix, ]Q3 QR, ]e0 DataBar.
    for prefix in ["]C1", "]d2", "]Q3", "]e0", "]J1"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest;
        }
    }
    let text = text.replace("<GS>", &GS.to_string());
    let text = text.trim_start_matches(GS);
    if text.is_empty() {
        return Err(Gs1Error::Empty);
    }
    if text.starts_with('(') {
        return bracketed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == GS {
            i += 1;
            continue;
        }
        let position = i;
        let (ai, length, _) = [2usize, 3, 4]
            .iter()
            .filter(|n| i + *n <= chars.len())
            .find_map(|n| lookup(&chars[i..i + n].iter().collect::<String>()))
            .ok_or_else(|| Gs1Error::UnknownAi {
                ai: chars[i..(i + 4).min(chars.len())].iter().collect(),
                position,
            })?;
        i += ai.len();
        let value: String = match length {
            Length::Fixed(n) => {
                if i + n > chars.len() {
                    return Err(Gs1Error::BadValue {
                        ai,
                        reason: format!("must have {n} characters"),
                    });
                }
                let v: String = chars[i..i + n].iter().collect();
                i += n;
                v
            }
            Length::Variable(_) => {
                let end = chars[i..]
                    .iter()
                    .position(|c| *c == GS)
                    .map_or(chars.len(), |p| i + p);
                let v: String = chars[i..end].iter().collect();
                i = end;
                v
            }
        };
        out.push((ai.to_owned(), value, position));
    }
    Ok(out)
}

fn bracketed(text: &str) -> Result<Vec<(String, String, usize)>, Gs1Error> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut position = 0;
    while !rest.is_empty() {
        let Some(after_open) = rest.strip_prefix('(') else {
            return Err(Gs1Error::Malformed {
                position,
                reason: "expected ( before an application identifier",
            });
        };
        let close = after_open.find(')').ok_or(Gs1Error::Malformed {
            position,
            reason: "an application identifier is not closed with )",
        })?;
        let ai = &after_open[..close];
        let body = &after_open[close + 1..];
        let end = body.find('(').unwrap_or(body.len());
        let value = body[..end].trim_end_matches(GS);
        out.push((ai.to_owned(), value.to_owned(), position));
        position += 2 + close + end;
        rest = &body[end..];
    }
    Ok(out)
}

/// Parses a scan. `today` anchors the two-digit years of dates.
pub fn parse(input: &str, today: NaiveDate) -> Result<Scan, Gs1Error> {
    let mut scan = Scan::default();
    for (raw_ai, value, position) in elements(input)? {
        let (ai, length, kind) = lookup(&raw_ai).ok_or(Gs1Error::UnknownAi {
            ai: raw_ai.clone(),
            position,
        })?;
        let bad = |reason: String| Gs1Error::BadValue { ai, reason };
        match length {
            Length::Fixed(n) if value.chars().count() != n => {
                return Err(bad(format!(
                    "must have {n} characters, not {}",
                    value.chars().count()
                )))
            }
            Length::Variable(max) if value.is_empty() || value.chars().count() > max => {
                return Err(bad(format!("must have 1 to {max} characters")))
            }
            _ => {}
        }
        match kind {
            Kind::Digits | Kind::Date if !value.chars().all(|c| c.is_ascii_digit()) => {
                return Err(bad("must be digits".into()))
            }
            Kind::Text if !value.chars().all(is_cset82) => {
                return Err(bad("contains a character GS1 does not allow".into()))
            }
            _ => {}
        }
        let slot_taken = match ai {
            "01" => scan.gtin.is_some(),
            "17" => scan.expiry.is_some(),
            "10" => scan.lot.is_some(),
            "21" => scan.serial.is_some(),
            _ => false,
        };
        if slot_taken {
            return Err(Gs1Error::Repeated { ai });
        }
        match ai {
            "01" => {
                let check = gtin_check_digit(&value[..13]).unwrap_or(10);
                if value[13..].parse::<u32>().ok() != Some(check) {
                    return Err(bad(format!("check digit is wrong (expected {check})")));
                }
                scan.gtin = Some(value);
            }
            "17" => scan.expiry = Some(parse_date(ai, &value, today)?),
            "10" => scan.lot = Some(value),
            "21" => scan.serial = Some(value),
            _ if kind == Kind::Date => {
                parse_date(ai, &value, today)?;
            }
            _ => {}
        }
    }
    if scan == Scan::default() {
        return Err(Gs1Error::Malformed {
            position: 0,
            reason: "no GTIN, expiry, lot or serial in the barcode",
        });
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn real_world_strings() {
        // GS1 General Specifications examples, as scanners type them.
        let expected = Scan {
            gtin: Some("09506000134352".into()),
            expiry: NaiveDate::from_ymd_opt(2027, 5, 31),
            lot: Some("ABC123".into()),
            serial: Some("12345XYZ".into()),
        };
        for input in [
            "(01)09506000134352(17)270531(10)ABC123(21)12345XYZ",
            "010950600013435217270531\u{1d}10ABC123\u{1d}2112345XYZ",
            "01095060001343521727053110ABC123\u{1d}2112345XYZ",
            "]d201095060001343521727053110ABC123\u{1d}2112345XYZ",
            "\u{1d}01095060001343521727053110ABC123<GS>2112345XYZ\r\n",
            "01095060001343522112345XYZ\u{1d}1727053110ABC123",
        ] {
            assert_eq!(parse(input, today()).unwrap(), expected, "{input:?}");
        }
        // Day 00 is the end of the month; a lot without expiry is fine.
        let s = parse("(01)04012345000009(17)280200(10)L-77/2", today()).unwrap();
        assert_eq!(s.expiry, NaiveDate::from_ymd_opt(2028, 2, 29));
        assert_eq!(s.lot.as_deref(), Some("L-77/2"));
        let s = parse("0104012345000009", today()).unwrap();
        assert_eq!(s.lot, None);
    }

    #[test]
    fn malformed_strings_are_refused() {
        let cases = [
            ("", "empty"),
            ("hello world", "unknown application identifier"),
            ("(01)09506000134353", "check digit"),
            ("(01)0950600013435", "14 characters"),
            ("(17)271331", "month"),
            ("(17)270230", "valid date"),
            ("(10)", "1 to 20"),
            ("(10)ABCDEFGHIJKLMNOPQRSTU", "1 to 20"),
            ("(99)ABC", "unknown application identifier"),
            ("(10)AB~C", "does not allow"),
            ("(01)09506000134352(01)09506000134352", "twice"),
            ("(01)09506000134352(10", "not closed"),
            ("0109506000134352 10ABC", "unknown application identifier"),
        ];
        for (input, message) in cases {
            let err = parse(input, today()).unwrap_err().to_string();
            assert!(err.contains(message), "{input:?}: {err}");
        }
    }

    fn gtin() -> impl Strategy<Value = String> {
        proptest::collection::vec(0u32..10, 13).prop_map(|digits| {
            let body: String = digits
                .iter()
                .map(|d| char::from_digit(*d, 10).unwrap())
                .collect();
            let check = gtin_check_digit(&body).unwrap();
            format!("{body}{check}")
        })
    }

    /// Characters of set 82 that cannot be confused with the bracketed notation.
    fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[A-Za-z0-9!\"%&'*+,./:;<=>?_-]{{1,{max}}}"))
            .unwrap()
    }

    fn date() -> impl Strategy<Value = NaiveDate> {
        (1977i32..2076, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    proptest! {
        #[test]
        fn any_valid_element_string_round_trips(gtin in gtin(), expiry in date(), lot in text(20), serial in text(20), order in 0usize..4) {
            let yymmdd = expiry.format("%y%m%d").to_string();
            let fixed = [format!("01{gtin}"), format!("17{yymmdd}")];
            let variable = [format!("10{lot}"), format!("21{serial}")];
            // Fixed-length fields need no separator; variable ones do, except at the end.
            let raw = match order {
                0 => format!("{}{}{}{GS}{}", fixed[0], fixed[1], variable[0], variable[1]),
                1 => format!("{}{GS}{}{GS}{}{}", variable[1], variable[0], fixed[0], fixed[1]),
                2 => format!("{}{}{GS}{}{}", fixed[1], variable[0], fixed[0], variable[1]),
                _ => format!("]C1{}{}{GS}{}{}{GS}", fixed[0], variable[1], fixed[1], variable[0]),
            };
            let bracketed = format!("(01){gtin}(17){yymmdd}(10){lot}(21){serial}");
            let expected = Scan { gtin: Some(gtin), expiry: Some(expiry), lot: Some(lot), serial: Some(serial) };
            prop_assert_eq!(parse(&raw, today()).unwrap(), expected.clone());
            prop_assert_eq!(parse(&bracketed, today()).unwrap(), expected);
        }

        #[test]
        fn arbitrary_text_never_panics(input in ".{0,60}") {
            let _ = parse(&input, today());
        }
    }
}
