//! SciCan STATCLAVE G4: the cycle log the device keeps as `/opt/data/scilog/YYYY/MM/DD/
//! S{YYYYMMDD}_{cycle}_{serial}.txt` (CRLF, beside a `.cpt` curve that is kept but not read), and
//! the same log inside the web portal's JSON download (`succeeded`, `date`, `number`, `runmode`,
//! `display_units`, `status`, `x_axis_points`, `temp`, `pressure`, `log`). The log gives the
//! model and firmware, serial, cycle number, start time and date, program and set points, the
//! plateau's minimum and maximum (°C, kPa absolute), phase times (mm:ss from the start) and a
//! `Digital Signature #` whose algorithm SciCan does not publish.
//!
//! The log's date (`14/03/2024`) may be day/month or month/day: the file name's date settles it;
//! with no name to go by, a date that reads both ways is noted. The portal's curves carry no unit:
//! their temperatures are read in the portal's display unit, their pressures are kept as text and
//! not used (their unit is not known).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::Value;

use super::super::units::{self, PressureUnit};
use super::super::{
    DeviceResult, NameFields, Parsed, ParsedCycle, Phase, Reading, Sample, Unreadable, VendorCheck,
};
use super::{after, clock_seconds, kind_of_program, numbered, CycleLogParser};

pub struct StatclaveLog;
pub struct StatclavePortal;

const LOG: &str = "scican-statclave-g4-log";
const PORTAL: &str = "scican-statclave-g4-portal";

impl CycleLogParser for StatclaveLog {
    fn id(&self) -> &'static str {
        LOG
    }
    fn describe(&self) -> &'static str {
        "SciCan STATCLAVE G4 cycle log (S<date>_<cycle>_<serial>.txt)"
    }
    fn sniff(&self, name: &str, text: &str) -> u8 {
        let mut score = 0u8;
        for (needle, points) in [
            ("CYCLE NUMBER", 35),
            ("Digital Signature #", 30),
            ("steri. Values", 15),
            ("STATCLAVE", 10),
        ] {
            if text.contains(needle) {
                score += points;
            }
        }
        if name_fields(name).is_some() {
            score += 20;
        }
        if text.trim_start().starts_with('{') {
            score = score.min(30);
        }
        score
    }
    fn parse(&self, name: &str, text: &str) -> Parsed {
        let mut out = Parsed::default();
        match log(name, text, 1) {
            Ok(c) => out.cycles.push(c),
            Err(reason) => out.unreadable.push(Unreadable { line: 1, reason }),
        }
        out
    }
}

impl CycleLogParser for StatclavePortal {
    fn id(&self) -> &'static str {
        PORTAL
    }
    fn describe(&self) -> &'static str {
        "SciCan STATCLAVE G4 web portal download (cycleData JSON)"
    }
    fn sniff(&self, _name: &str, text: &str) -> u8 {
        if !text.trim_start().starts_with('{') {
            return 0;
        }
        let mut score = 0u8;
        for (needle, points) in [
            ("\"x_axis_points\"", 40),
            ("\"succeeded\"", 20),
            ("\"log\"", 20),
            ("\"runmode\"", 10),
            ("CYCLE NUMBER", 10),
        ] {
            if text.contains(needle) {
                score += points;
            }
        }
        score
    }
    fn parse(&self, name: &str, text: &str) -> Parsed {
        let mut out = Parsed::default();
        match portal(name, text) {
            Ok(c) => out.cycles.push(c),
            Err(reason) => out.unreadable.push(Unreadable { line: 1, reason }),
        }
        out
    }
}

/// `S20240314_00417_710125H00099.txt`
fn name_fields(name: &str) -> Option<NameFields> {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let mut parts = stem.strip_prefix('S')?.splitn(3, '_');
    let date = NaiveDate::parse_from_str(parts.next()?, "%Y%m%d").ok()?;
    let number = parts.next()?;
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(NameFields {
        cycle_number: number.parse().ok(),
        serial: parts.next().map(str::to_owned),
        date: Some(date),
        alarm: None,
    })
}

/// `132.6 C  291kPa`
fn min_max(l: &str) -> Option<(Option<Reading>, Option<Reading>)> {
    let mut temperature = None;
    let mut pressure = None;
    let parts: Vec<&str> = l.split_whitespace().collect();
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        let unit_next = parts.get(i + 1).copied().unwrap_or("");
        if let Some(v) = units::number(p) {
            let lower = format!("{p}{unit_next}").to_ascii_lowercase();
            if lower.contains("kpa") {
                let original = if p.to_ascii_lowercase().contains("kpa") {
                    p.to_owned()
                } else {
                    format!("{p} {unit_next}")
                };
                pressure = Some(units::pressure(&original, v, PressureUnit::KpaAbsolute));
            } else if lower.ends_with('f') || unit_next == "F" || unit_next == "°F" {
                temperature = Some(units::fahrenheit(&format!("{p} {unit_next}"), v));
            } else if lower.contains('c') {
                let original = if p.ends_with('C') {
                    p.to_owned()
                } else {
                    format!("{p} {unit_next}")
                };
                temperature = Some(units::celsius(&original, v));
            } else if lower.contains("psi") {
                pressure = Some(units::pressure(
                    &format!("{p} {unit_next}"),
                    v,
                    PressureUnit::Psia,
                ));
            }
        }
        i += 1;
    }
    (temperature.is_some() || pressure.is_some()).then_some((temperature, pressure))
}

/// `132 C/4min` or `134 C/3.5min`
fn set_points(l: &str) -> Option<(Reading, Reading)> {
    let (t, h) = l.split_once('/')?;
    let tv = units::number(t.trim().trim_end_matches(['C', 'F', '°', ' ']))?;
    let temperature = if t.contains('F') {
        units::fahrenheit(t, tv)
    } else {
        units::celsius(t, tv)
    };
    let h = h.trim();
    let minutes = units::number(h.strip_suffix("min")?)?;
    Some((temperature, units::seconds(h, minutes * 60.0)))
}

fn log(name: &str, text: &str, first_line: usize) -> Result<ParsedCycle, String> {
    let from_name = name_fields(name);
    let mut model = None;
    let mut serial = None;
    let mut number = None;
    let mut when: Option<(usize, String, NaiveTime)> = None;
    let mut program = None;
    let mut set = None;
    let mut min = None;
    let mut max = None;
    let mut pending: Option<&str> = None;
    let mut phases = Vec::new();
    let mut check = None;
    let mut expect_signature = false;
    let mut result = DeviceResult::NotStated;
    let mut result_text = None;
    let mut alarm = None;
    let mut notes = Vec::new();
    for (n, raw) in numbered(text) {
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        if expect_signature {
            check = Some(VendorCheck {
                scheme: "SciCan Digital Signature".into(),
                value: l.to_owned(),
            });
            expect_signature = false;
            continue;
        }
        if let Some(p) = pending.take() {
            if let Some(v) = min_max(l) {
                if p == "min" {
                    min = Some(v);
                } else {
                    max = Some(v);
                }
                continue;
            }
        }
        if model.is_none() && l.to_ascii_uppercase().starts_with("STATCLAVE") {
            model = Some(l.to_owned());
        } else if let Some(v) = l.strip_prefix("SN ").or_else(|| after(l, "SN:")) {
            serial = Some(v.trim().to_owned());
        } else if l.starts_with("Unit #") || l.contains("ppm") || l.contains("uS") {
        } else if let Some(v) = after(l, "CYCLE NUMBER") {
            number = Some(
                v.parse::<i64>()
                    .map_err(|_| format!("line {n}: the cycle number \"{v}\" is not a number"))?,
            );
        } else if let Some((t, d)) = l
            .split_once(char::is_whitespace)
            .filter(|(t, d)| t.matches(':').count() == 2 && d.trim().matches('/').count() == 2)
        {
            let t = NaiveTime::parse_from_str(t, "%H:%M:%S")
                .map_err(|_| format!("line {n}: the time \"{t}\" is not hh:mm:ss"))?;
            when = Some((n, d.trim().to_owned(), t));
        } else if l.starts_with("Min. steri") {
            pending = Some("min");
        } else if l.starts_with("Max. steri") {
            pending = Some("max");
        } else if let Some(sp) = set_points(l) {
            set = Some(sp);
        } else if l.starts_with("Digital Signature") {
            expect_signature = true;
        } else if let Some((label, at)) = l
            .rsplit_once(char::is_whitespace)
            .and_then(|(label, t)| Some((label.trim(), clock_seconds(t)?)))
            .filter(|(label, _)| label.chars().all(|c| c.is_ascii_uppercase() || c == ' '))
        {
            if label.contains("COMPLETE") {
                result = DeviceResult::Passed;
                result_text = Some(label.to_owned());
            } else if label.contains("FAULT") || label.contains("ABORT") || label.contains("FAIL") {
                result = DeviceResult::Failed;
                result_text = Some(label.to_owned());
            }
            phases.push(Phase {
                name: label.to_owned(),
                elapsed_s: Some(at),
                duration_s: None,
            });
        } else if number.is_some() && program.is_none() {
            program = Some(l.to_owned());
        } else {
            let upper = l.to_ascii_uppercase();
            if upper.contains("FAULT") || upper.contains("ERROR") || upper.contains("ABORT") {
                alarm = Some(l.to_owned());
            } else {
                notes.push(format!("line {n}: {l}"));
            }
        }
    }
    let number = number.ok_or("no \"CYCLE NUMBER\" line")?;
    let (date_line, date_text, time) =
        when.ok_or("no start time and date line (hh:mm:ss dd/mm/yyyy)")?;
    let day_first = NaiveDate::parse_from_str(&date_text, "%d/%m/%Y").ok();
    let month_first = NaiveDate::parse_from_str(&date_text, "%m/%d/%Y").ok();
    let named = from_name.as_ref().and_then(|f| f.date);
    let day = match (day_first, month_first) {
        (Some(a), Some(b)) if a != b => match named {
            Some(d) if d == a || d == b => d,
            _ => {
                notes.push(format!(
                    "the date {date_text} reads as {a} or as {b}; read as day/month"
                ));
                a
            }
        },
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => {
            return Err(format!(
                "line {date_line}: the date \"{date_text}\" is not a calendar date"
            ))
        }
    };
    let started = NaiveDateTime::new(day, time);
    let program = program.unwrap_or_default();
    let mut c = ParsedCycle::new(LOG, first_line, number, started);
    c.kind = kind_of_program(&program);
    c.program = program;
    c.model = model;
    c.serial = serial;
    if let Some((t, h)) = set {
        c.set_temperature_c = Some(t);
        c.set_hold_s = Some(h);
    }
    c.reported_min = min;
    c.reported_max = max;
    let at = |label: &str| {
        phases
            .iter()
            .find(|p: &&Phase| p.name.starts_with(label))
            .and_then(|p| p.elapsed_s)
    };
    if let (Some(a), Some(b)) = (at("STERILIZING"), at("DRYING START").or(at("VENTING"))) {
        c.hold_s = Some(b - a);
    }
    c.finished_local = phases
        .iter()
        .filter_map(|p| p.elapsed_s)
        .max()
        .and_then(|s| started.checked_add_signed(chrono::Duration::seconds(s)));
    c.phases = phases;
    if alarm.is_some() {
        result = DeviceResult::Failed;
    }
    c.result = result;
    c.result_text = result_text;
    c.alarm = alarm;
    c.vendor_check = check;
    c.check_expected = true;
    c.name_fields = from_name.unwrap_or_default();
    c.notes = notes;
    Ok(c)
}

/// A curve as the portal sends it: a JSON array, or numbers separated by commas (nginx
/// firmware) or spaces (MQX firmware).
fn curve(v: Option<&Value>) -> Vec<(String, Option<f64>)> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(|x| match x {
                Value::Number(n) => (n.to_string(), n.as_f64()),
                Value::String(s) => (s.clone(), units::number(s)),
                other => (other.to_string(), None),
            })
            .collect(),
        Some(Value::String(s)) => s
            .split([',', ' ', '\n', '\t'])
            .filter(|x| !x.trim().is_empty())
            .map(|x| (x.trim().to_owned(), units::number(x)))
            .collect(),
        _ => Vec::new(),
    }
}

fn portal(name: &str, text: &str) -> Result<ParsedCycle, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("not valid JSON: {e} (line {})", e.line()))?;
    let log_text = v
        .get("log")
        .and_then(Value::as_str)
        .ok_or("the download has no \"log\": the cycle's record is in it")?;
    let log_text = log_text.replace("\r\n", "\n");
    let mut c = log(name, &log_text, 1)?;
    c.format = PORTAL.to_owned();
    if let Some(n) = v.get("number").and_then(|n| {
        n.as_i64()
            .or_else(|| n.as_str().and_then(|s| s.trim().parse().ok()))
    }) {
        c.name_fields.cycle_number = Some(n);
    }
    match v.get("succeeded") {
        Some(Value::Bool(false)) if c.result == DeviceResult::Passed => {
            c.notes
                .push("the portal says the cycle did not succeed; its log says complete".into());
            c.result = DeviceResult::Failed;
        }
        Some(Value::Bool(false)) => c.result = DeviceResult::Failed,
        _ => {}
    }
    let fahrenheit = v
        .get("display_units")
        .and_then(Value::as_str)
        .is_some_and(|u| u.to_ascii_uppercase().contains('F'));
    let xs = curve(v.get("x_axis_points"));
    let temps = curve(v.get("temp"));
    let pressures = curve(v.get("pressure"));
    if !temps.is_empty() && xs.len() != temps.len() {
        c.notes.push(format!(
            "the curve has {} time points and {} temperatures",
            xs.len(),
            temps.len()
        ));
    }
    for (i, (traw, t)) in temps.iter().enumerate() {
        let elapsed = xs.get(i).and_then(|x| x.1).map(|s| s.round() as i64);
        c.samples.push(Sample {
            elapsed_s: elapsed,
            phase: None,
            temperature_c: t.map(|t| {
                if fahrenheit {
                    units::fahrenheit(traw, t)
                } else {
                    units::celsius(traw, t)
                }
            }),
            pressure_kpa: None,
        });
    }
    if !pressures.is_empty() {
        c.notes.push(
            "the portal's curve pressures carry no unit and are not used; the log's minimum and \
             maximum are"
                .into(),
        );
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const NAME: &str = "S20240314_00417_710125H00099.txt";
    pub const GOOD: &str = "STATCLAVE G4 SBS1R120\r\nSN 710125H00099\r\nUnit #  :        000\r\n1.1uS / 0.6ppm\r\nCYCLE NUMBER  000417\r\n10:02:11  14/03/2024\r\nSolid/Wrapped\r\n132 C/4min\r\nMin. steri. Values:\r\n132.6 C  291kPa\r\nMax. steri. Values:\r\n133.4 C  299kPa\r\nSTERILIZING    24:10\r\nDRYING START   28:12\r\nDRYING END     44:12\r\nCYCLE COMPLETE 45:03\r\nDigital Signature #\r\n7F3A9C0D51E2B846\r\n";

    #[test]
    fn reads_the_log() {
        let text = GOOD.replace("\r\n", "\n");
        assert!(StatclaveLog.sniff(NAME, &text) >= 90);
        let p = StatclaveLog.parse(NAME, &text);
        assert!(p.unreadable.is_empty(), "{:?}", p.unreadable);
        let c = &p.cycles[0];
        assert_eq!(c.cycle_number, 417);
        assert_eq!(c.serial.as_deref(), Some("710125H00099"));
        assert_eq!(c.program, "Solid/Wrapped");
        assert_eq!(c.set_temperature_c.as_ref().unwrap().value, 132.0);
        assert_eq!(c.set_hold_s.as_ref().unwrap().value, 240.0);
        assert_eq!(c.hold_s, Some(242));
        assert_eq!(c.result, DeviceResult::Passed);
        let (t, p) = c.reported_min.clone().unwrap();
        assert_eq!(t.unwrap().value, 132.6);
        assert_eq!(p.unwrap().value, 291.0);
        assert_eq!(c.started_local.to_string(), "2024-03-14 10:02:11");
        assert_eq!(c.finished_local.unwrap().to_string(), "2024-03-14 10:47:14");
        assert_eq!(c.vendor_check.as_ref().unwrap().value, "7F3A9C0D51E2B846");
        assert_eq!(c.name_fields.cycle_number, Some(417));
        assert!(c.notes.is_empty(), "{:?}", c.notes);
    }

    #[test]
    fn the_name_settles_an_ambiguous_date() {
        let text = GOOD
            .replace("\r\n", "\n")
            .replace("14/03/2024", "08/10/2025");
        let p = StatclaveLog.parse("S20250810_00417_710125H00099.txt", &text);
        assert_eq!(p.cycles[0].started_local.date().to_string(), "2025-08-10");
        let p = StatclaveLog.parse("S20251008_00417_710125H00099.txt", &text);
        assert_eq!(p.cycles[0].started_local.date().to_string(), "2025-10-08");
        let p = StatclaveLog.parse("log.txt", &text);
        assert!(p.cycles[0].notes[0].contains("reads as"));
    }

    #[test]
    fn reads_the_portal_download() {
        let json = serde_json::json!({
            "succeeded": true, "date": "2024-03-14", "number": 417, "runmode": "Solid/Wrapped",
            "display_units": "C", "status": "complete",
            "x_axis_points": "0,60,120", "temp": "57.0,120.5,133.0", "pressure": "0.12,1.9,2.9",
            "log": GOOD,
        })
        .to_string();
        assert!(StatclavePortal.sniff("cycleData.json", &json) >= 90);
        assert!(StatclaveLog.sniff("cycleData.json", &json) < 50);
        let p = StatclavePortal.parse("cycleData.json", &json);
        let c = &p.cycles[0];
        assert_eq!(c.samples.len(), 3);
        assert_eq!(c.samples[2].temperature_c.as_ref().unwrap().value, 133.0);
        assert_eq!(c.samples[1].elapsed_s, Some(60));
    }
}
