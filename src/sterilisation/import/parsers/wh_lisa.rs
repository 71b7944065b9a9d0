//! W&H Lisa MB17/MB22 with Lisa log64: one read-only text file per cycle on the MMC card, in
//! `Lisa<serial>/YYYY/MM` folders (alarms in `Axx` subfolders). The file name carries what the
//! body does not: `YYMMDD <device date> HH_MM_SS [Axx] <model><E|U|J><serial> <cycle> <type>.txt`,
//! e.g. `240314 14-03-24 10_00_00 22E05-0417 03121 UNIVERSAL B.txt` (E: day-month-year, U:
//! month-day-year with AM/PM, J: year-month-day).
//!
//! The body is known only in fragments from W&H's manuals: phase lines (code, elapsed mm:ss,
//! duration mm:ss), sample lines (°C and bar relative to the atmosphere, negative under vacuum),
//! `END`, the end date and time, the result (`LOAD STERILE`, in the device's language) and a last
//! line `W&H O.D.Code` with a control code only W&H can check. Columns are read by their content,
//! never by position. Which phase code is the sterilising hold is not in the public fragments: a
//! phase whose code begins `ST` is taken as the hold; otherwise the hold is not stated. The
//! program's set points are not in the file either.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::super::units::{self, PressureUnit};
use super::super::{
    DeviceResult, NameFields, Parsed, ParsedCycle, Phase, Sample, Unreadable, VendorCheck,
};
use super::{clock_seconds, kind_of_program, numbered, CycleLogParser};

pub struct WhLisa;

const ID: &str = "wh-lisa-log64";

impl CycleLogParser for WhLisa {
    fn id(&self) -> &'static str {
        ID
    }
    fn describe(&self) -> &'static str {
        "W&H Lisa with Lisa log64 (one .txt per cycle from the MMC card)"
    }
    fn sniff(&self, name: &str, text: &str) -> u8 {
        let mut score = 0u8;
        if text.contains("W&H O.D.Code") {
            score += 60;
        }
        if name_fields(name).is_some() {
            score += 30;
        }
        if numbered(text).any(|(_, l)| phase_line(l).is_some()) {
            score += 10;
        }
        score
    }
    fn parse(&self, name: &str, text: &str) -> Parsed {
        let mut out = Parsed::default();
        match record(name, text) {
            Ok(c) => out.cycles.push(c),
            Err(reason) => out.unreadable.push(Unreadable { line: 1, reason }),
        }
        out
    }
}

/// What a log64 file name says.
#[derive(Debug, Clone, PartialEq)]
struct FromName {
    started: NaiveDateTime,
    region: char,
    model: String,
    serial: String,
    cycle_number: i64,
    program: String,
    alarm: Option<String>,
    /// The name carries a previous cycle's data in brackets: the record is incomplete.
    incomplete: bool,
}

fn name_fields(name: &str) -> Option<FromName> {
    let stem = name
        .strip_suffix(".txt")
        .or_else(|| name.strip_suffix(".TXT"))?;
    let incomplete = stem.contains('(');
    let cleaned: String = stem.chars().filter(|c| !matches!(c, '(' | ')')).collect();
    let mut tokens = cleaned.split_whitespace();
    let iso = tokens.next()?;
    if iso.len() != 6 || !iso.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let day = NaiveDate::parse_from_str(&format!("20{iso}"), "%Y%m%d").ok()?;
    let _device_date = tokens.next().filter(|t| t.len() == 8 && t.contains('-'))?;
    let mut clock = tokens.next()?.to_ascii_uppercase();
    let mut pm = None;
    for (suffix, is_pm) in [("PM", true), ("AM", false)] {
        if let Some(c) = clock.strip_suffix(suffix) {
            pm = Some(is_pm);
            clock = c.to_owned();
        }
    }
    let mut next = tokens.next()?;
    if pm.is_none() && (next.eq_ignore_ascii_case("AM") || next.eq_ignore_ascii_case("PM")) {
        pm = Some(next.eq_ignore_ascii_case("PM"));
        next = tokens.next()?;
    }
    let mut t = NaiveTime::parse_from_str(&clock, "%H_%M_%S").ok()?;
    if let Some(pm) = pm {
        let h = chrono::Timelike::hour(&t) % 12 + if pm { 12 } else { 0 };
        t = chrono::Timelike::with_hour(&t, h)?;
    }
    let mut alarm = None;
    if next.len() == 3 && next.starts_with('A') && next[1..].chars().all(|c| c.is_ascii_digit()) {
        alarm = Some(next.to_owned());
        next = tokens.next()?;
    }
    let device = next;
    let region = device
        .chars()
        .nth(2)
        .filter(|c| matches!(c, 'E' | 'U' | 'J'))?;
    let model = device
        .get(..2)
        .filter(|m| m.chars().all(|c| c.is_ascii_digit()))?;
    let serial = device.get(3..)?.to_owned();
    let number: i64 = tokens
        .next()
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()))?
        .parse()
        .ok()?;
    let program = tokens.collect::<Vec<_>>().join(" ");
    Some(FromName {
        started: NaiveDateTime::new(day, t),
        region,
        model: format!("Lisa MB{model}"),
        serial,
        cycle_number: number,
        program: program.trim_matches([' ', '_']).trim().to_owned(),
        alarm,
        incomplete,
    })
}

/// `DVe       26:14 04:00`: a phase code, the elapsed time and the phase's duration.
fn phase_line(l: &str) -> Option<Phase> {
    let parts: Vec<&str> = l.split_whitespace().collect();
    let (code, elapsed, duration) = match parts.as_slice() {
        [code, e, d] => (code, clock_seconds(e)?, Some(clock_seconds(d)?)),
        [code, e] => (code, clock_seconds(e)?, None),
        _ => return None,
    };
    if !code.chars().all(|c| c.is_ascii_alphabetic()) || code.len() > 4 {
        return None;
    }
    Some(Phase {
        name: (*code).to_owned(),
        elapsed_s: Some(elapsed),
        duration_s: duration,
    })
}

/// `  107.2   -0.88`: °C and bar relative.
fn sample_line(l: &str) -> Option<(f64, f64, &str, &str)> {
    let parts: Vec<&str> = l.split_whitespace().collect();
    let [t, p] = parts.as_slice() else {
        return None;
    };
    Some((units::number(t)?, units::number(p)?, t, p))
}

fn body_date(s: &str, region: char) -> Option<NaiveDateTime> {
    let s = s.trim();
    let formats: &[&str] = match region {
        'U' => &["%m-%d-%y %I:%M:%S %p", "%m-%d-%y %H:%M:%S"],
        'J' => &["%y-%m-%d %H:%M:%S"],
        _ => &["%d-%m-%y %H:%M:%S"],
    };
    formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

fn record(name: &str, text: &str) -> Result<ParsedCycle, String> {
    let from_name = name_fields(name).ok_or(
        "a W&H log64 file carries its cycle number only in its name, and this name is not in \
         the log64 form (YYMMDD date HH_MM_SS serial cycle type.txt)",
    )?;
    let mut phases: Vec<Phase> = Vec::new();
    let mut samples = Vec::new();
    let mut end_elapsed = None;
    let mut finished = None;
    let mut result = DeviceResult::NotStated;
    let mut result_text = None;
    let mut check = None;
    let mut alarm = from_name.alarm.clone().map(|a| format!("alarm {a}"));
    let mut notes = Vec::new();
    for (n, raw) in numbered(text) {
        let l = raw.trim();
        if l.is_empty() || l.chars().all(|c| c == '-' || c == '=') {
            continue;
        }
        let upper = l.to_uppercase();
        if let Some(v) = l.strip_prefix("W&H O.D.Code") {
            check = Some(VendorCheck {
                scheme: "W&H O.D.Code".into(),
                value: v.trim().to_owned(),
            });
        } else if let Some(p) = phase_line(l) {
            if p.name.eq_ignore_ascii_case("END") {
                end_elapsed = p.elapsed_s;
            } else {
                phases.push(p);
            }
        } else if let Some((t, p, traw, praw)) = sample_line(l) {
            samples.push(Sample {
                elapsed_s: phases.last().and_then(|p| p.elapsed_s),
                phase: phases.last().map(|p| p.name.clone()),
                temperature_c: Some(units::celsius(traw, t)),
                pressure_kpa: Some(units::pressure(praw, p, PressureUnit::BarRelative)),
            });
        } else if let Some(v) = l.split_once(':').filter(|(k, _)| {
            let k = k.trim().to_ascii_lowercase();
            k == "date" || k == "datum" || k == "data" || k == "fecha"
        }) {
            finished = Some(body_date(v.1, from_name.region).ok_or(format!(
                "line {n}: the date \"{}\" is not in the device's {} form",
                v.1.trim(),
                match from_name.region {
                    'U' => "MM-DD-YY",
                    'J' => "YY-MM-DD",
                    _ => "DD-MM-YY",
                }
            ))?);
        } else if upper.contains("NOT STERIL")
            || upper.contains("NON STERIL")
            || upper.contains("NICHT STERIL")
        {
            result = DeviceResult::Failed;
            result_text = Some(l.to_owned());
        } else if upper.contains("STERIL") && l.len() <= 40 {
            result = DeviceResult::Passed;
            result_text = Some(l.to_owned());
        } else if upper.contains("ALARM") || upper.contains("ERROR") {
            alarm = Some(l.to_owned());
        } else {
            notes.push(format!("line {n}: {l}"));
        }
    }
    let mut c = ParsedCycle::new(ID, 1, from_name.cycle_number, from_name.started);
    c.model = Some(from_name.model.clone());
    c.serial = Some(from_name.serial.clone());
    c.kind = kind_of_program(&from_name.program);
    c.program = from_name.program.clone();
    c.finished_local = finished;
    c.hold_s = phases
        .iter()
        .find(|p| p.name.to_ascii_uppercase().starts_with("ST"))
        .and_then(|p| p.duration_s);
    c.phases = phases;
    c.samples = samples;
    if alarm.is_some() {
        result = DeviceResult::Failed;
    }
    if from_name.incomplete {
        notes.push(
            "the file name carries a previous cycle's data in brackets: the device marks an \
             incomplete record this way"
                .into(),
        );
        if result == DeviceResult::Passed {
            result = DeviceResult::NotStated;
        }
    }
    c.result = result;
    c.result_text = result_text;
    c.alarm = alarm;
    c.vendor_check = check;
    c.check_expected = true;
    c.name_fields = NameFields {
        cycle_number: Some(from_name.cycle_number),
        serial: Some(from_name.serial),
        date: Some(from_name.started.date()),
        alarm: from_name.alarm,
    };
    // The name's start against the body's end less the elapsed time at END.
    if let (Some(end), Some(elapsed)) = (finished, end_elapsed) {
        let start = end
            .checked_sub_signed(chrono::Duration::seconds(elapsed))
            .unwrap_or(end);
        let drift = (start - from_name.started).num_seconds().abs();
        if drift > 120 {
            c.notes.push(format!(
                "the name's start {} and the body's end less its elapsed time ({}) differ by {} min",
                from_name.started,
                start,
                drift / 60
            ));
        }
    }
    c.notes.extend(notes);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sterilisation::import::CycleKind;

    pub const NAME: &str = "240314 14-03-24 10_00_00 22E05-0417 03121 UNIVERSAL B.txt";
    pub const GOOD: &str = "DVe       26:14 04:00
  107.2   -0.88
VEN       26:54 00:40
LEV       27:24 00:30
----------------------------------------
END       27:24
----------------------------------------
Date :    14-03-24 10:27:24
LOAD STERILE
========================================
W&H O.D.Code 00-1A2B3-9C0FFEE123456789
";

    #[test]
    fn reads_the_name_and_the_known_fragments() {
        assert!(WhLisa.sniff(NAME, GOOD) >= 90);
        let p = WhLisa.parse(NAME, GOOD);
        assert!(p.unreadable.is_empty(), "{:?}", p.unreadable);
        let c = &p.cycles[0];
        assert_eq!(c.cycle_number, 3121);
        assert_eq!(c.serial.as_deref(), Some("05-0417"));
        assert_eq!(c.model.as_deref(), Some("Lisa MB22"));
        assert_eq!(c.program, "UNIVERSAL B");
        assert_eq!(c.result, DeviceResult::Passed);
        assert_eq!(c.started_local.to_string(), "2024-03-14 10:00:00");
        assert_eq!(c.finished_local.unwrap().to_string(), "2024-03-14 10:27:24");
        assert!((c.samples[0].pressure_kpa.as_ref().unwrap().value - 13.325).abs() < 0.01);
        assert_eq!(
            c.vendor_check.as_ref().unwrap().value,
            "00-1A2B3-9C0FFEE123456789"
        );
        assert!(c.notes.is_empty(), "{:?}", c.notes);
    }

    #[test]
    fn names_of_tests_alarms_and_us_devices() {
        let n =
            name_fields("040128 28-01-04 08_41_22 22E02-0095 01898 B&D _ HELIX TEST .txt").unwrap();
        assert_eq!(n.cycle_number, 1898);
        assert_eq!(kind_of_program(&n.program), CycleKind::AirRemovalTest);
        let n =
            name_fields("240314 03-14-24 02_05_00PM A23 22U05-0417 03122 UNIVERSAL B.txt").unwrap();
        assert_eq!(n.alarm.as_deref(), Some("A23"));
        assert_eq!(n.started.to_string(), "2024-03-14 14:05:00");
        assert!(name_fields("cycle_000812.txt").is_none());
    }
}
