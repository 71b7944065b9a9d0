//! One parser per format, behind one trait. A file goes to the parser most sure it can read it,
//! judged on the content first and the file name second; below [`THRESHOLD`] no parser is chosen
//! and the caller hears how close each came.

mod csv_mapping;
mod scican;
mod tuttnauer;
mod wh_lisa;

pub use csv_mapping::{CsvMapping, CSV_FORMAT};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::decode::{decode, looks_like_text};
use super::{Parsed, RawFile};

/// The lowest score at which a parser is trusted with a file.
pub const THRESHOLD: u8 = 50;

pub trait CycleLogParser: Send + Sync {
    /// A stable identifier, stored with every cycle it reads, e.g. `wh-lisa-log64`.
    fn id(&self) -> &'static str;
    /// The format as a clinic knows it, e.g. "W&H Lisa (log64 text file)".
    fn describe(&self) -> &'static str;
    /// How sure the parser is that it can read this file, 0–100, from its name and decoded text.
    fn sniff(&self, name: &str, text: &str) -> u8;
    /// The cycles in the file, and each part that could not be read with its line and reason.
    fn parse(&self, name: &str, text: &str) -> Parsed;
}

/// How close a parser came to recognising a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParserScore {
    pub format: String,
    pub description: String,
    /// 0–100; a parser is chosen at 50 or more.
    pub score: u8,
}

/// Which parser read a file, or the scores when none would.
#[derive(Debug, Clone)]
pub enum Detection {
    Read {
        format: &'static str,
        encoding: &'static str,
        parsed: Parsed,
    },
    /// Not a text file (a binary curve file such as `.cyc` or `.cpt`): kept, not read.
    Binary,
    Unknown {
        tried: Vec<ParserScore>,
    },
}

fn parsers(mapping: Option<&CsvMapping>) -> Vec<Box<dyn CycleLogParser + '_>> {
    let mut all: Vec<Box<dyn CycleLogParser + '_>> = vec![
        Box::new(wh_lisa::WhLisa),
        Box::new(tuttnauer::Elara11),
        Box::new(scican::StatclaveLog),
        Box::new(scican::StatclavePortal),
    ];
    if let Some(m) = mapping {
        all.push(Box::new(m));
    }
    all
}

/// Every format the service reads, for documentation and error messages.
pub fn formats() -> Vec<(&'static str, &'static str)> {
    let mapping = CsvMapping::example();
    let all: Vec<(&'static str, &'static str)> = parsers(Some(&mapping))
        .iter()
        .map(|p| (p.id(), p.describe()))
        .collect();
    all
}

/// Picks the parser for a file and reads it. `mapping` is the steriliser's saved CSV mapping.
pub fn detect(file: &RawFile, mapping: Option<&CsvMapping>) -> Detection {
    if !looks_like_text(&file.bytes) {
        return Detection::Binary;
    }
    let text = decode(&file.bytes);
    let name = file.base_name();
    let mut scored: Vec<(u8, Box<dyn CycleLogParser + '_>)> = parsers(mapping)
        .into_iter()
        .map(|p| (p.sniff(name, &text.text).min(100), p))
        .collect();
    // The highest score wins; on a tie the earlier (more specific) parser.
    scored.sort_by_key(|s| std::cmp::Reverse(s.0));
    match scored.first() {
        Some((score, parser)) if *score >= THRESHOLD => Detection::Read {
            format: parser.id(),
            encoding: text.encoding,
            parsed: parser.parse(name, &text.text),
        },
        _ => Detection::Unknown {
            tried: scored
                .iter()
                .map(|(score, p)| ParserScore {
                    format: p.id().to_owned(),
                    description: p.describe().to_owned(),
                    score: *score,
                })
                .collect(),
        },
    }
}

/// Lines with their 1-based numbers.
pub(crate) fn numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l))
}

/// `mm:ss` or `hh:mm:ss` as seconds.
pub(crate) fn clock_seconds(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let n = |p: &str| -> Option<i64> {
        (!p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    match parts.as_slice() {
        [m, s] => {
            let (m, s) = (n(m)?, n(s)?);
            (s < 60).then_some(m * 60 + s)
        }
        [h, m, s] => {
            let (h, m, s) = (n(h)?, n(m)?, n(s)?);
            (m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
        }
        _ => None,
    }
}

/// The value after `label` on a line that starts with it, e.g. `Ser. Num: 123` → `123`.
pub(crate) fn after<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let l = line.trim_start();
    let head = l.get(..label.len())?;
    head.eq_ignore_ascii_case(label)
        .then(|| l[label.len()..].trim_start_matches([':', ' ', '\t']).trim())
}

/// What a program's name says the cycle was for.
pub fn kind_of_program(program: &str) -> super::CycleKind {
    let p = program.to_ascii_lowercase();
    if p.contains("bowie") || p.contains("b&d") || p.contains("helix") || p.contains("b+d") {
        super::CycleKind::AirRemovalTest
    } else if p.contains("vacuum test") || p.contains("leak") || p.contains("vacuum-test") {
        super::CycleKind::VacuumTest
    } else {
        super::CycleKind::Load
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_readings() {
        assert_eq!(clock_seconds("26:14"), Some(26 * 60 + 14));
        assert_eq!(clock_seconds("00:30:31"), Some(30 * 60 + 31));
        assert_eq!(clock_seconds("1:75"), None);
        assert_eq!(clock_seconds("x"), None);
        assert_eq!(after("Ser. Num: 12345678", "Ser. Num"), Some("12345678"));
    }
}

#[cfg(test)]
mod no_panics {
    use super::*;
    use proptest::prelude::*;

    /// Lines made of the formats' own labels and numbers, shuffled: closer to a damaged file
    /// than random bytes are.
    fn line() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("Cycle Num:".to_owned()),
            Just("Date:".to_owned()),
            Just("Time:".to_owned()),
            Just("CLK 1:".to_owned()),
            Just("Ster. Temp.".to_owned()),
            Just("Status: Cycle Ended".to_owned()),
            Just("CYCLE NUMBER".to_owned()),
            Just("Digital Signature #".to_owned()),
            Just("Min. steri. Values:".to_owned()),
            Just("W&H O.D.Code".to_owned()),
            Just("LOAD STERILE".to_owned()),
            Just("°F".to_owned()),
            Just("S".to_owned()),
            "[0-9]{1,3}:[0-9]{1,3}(:[0-9]{1,3})?",
            "-?[0-9]{1,4}(\\.[0-9]{1,3})?(In|kPa| C)?",
            "[0-9]{1,2}/[A-Z0-9]{1,3}/[0-9]{1,5}",
            "\\PC{0,12}",
        ];
        prop::collection::vec(token, 0..6).prop_map(|t| t.join(" "))
    }

    fn names() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("cycle_000812.txt".to_owned()),
            Just("S20240314_00417_710125H00099.txt".to_owned()),
            Just("240314 14-03-24 10_00_00 22E05-0417 03121 UNIVERSAL B.txt".to_owned()),
            Just("log.csv".to_owned()),
            "\\PC{0,40}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn no_text_makes_a_parser_panic(name in names(), lines in prop::collection::vec(line(), 0..40)) {
            let text = lines.join("\n");
            let mapping = CsvMapping::example();
            for p in parsers(Some(&mapping)) {
                let _ = p.sniff(&name, &text);
                let _ = p.parse(&name, &text);
            }
        }

        #[test]
        fn no_bytes_make_detection_panic(name in names(), bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let mapping = CsvMapping::example();
            let _ = detect(&RawFile { name, bytes }, Some(&mapping));
        }

        #[test]
        fn no_json_makes_the_portal_parser_panic(
            number in any::<i64>(),
            temps in prop::collection::vec(any::<f64>(), 0..20),
            log in prop::collection::vec(line(), 0..20),
        ) {
            let text = serde_json::json!({
                "succeeded": number % 2 == 0, "number": number, "x_axis_points": temps,
                "temp": temps.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(","),
                "log": log.join("\r\n"),
            })
            .to_string();
            let _ = scican::StatclavePortal.parse("x.json", &text);
        }
    }
}
