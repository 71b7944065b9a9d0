//! Tuttnauer Elara 11: one text file per cycle (`TXT/cycle_NNNNNN.txt`) on the USB stick. Known
//! from 202 real exports (cycles 259–460): a header of labelled lines, the program's set points,
//! then sample rows `<phase> hh:mm:ss <temperature> <pressure>` in °F and psig (a value ending in
//! `In` is inches of mercury below the atmosphere), `CLK 1`/`CLK 2` stamps at the start and the
//! end of the hold, a `Status:` line and the end time. Phases: `A` air removal, `H` heating, `S`
//! sterilising, `E` exhaust, `D` drying. The binary `CYC/*.cyc` twin is kept but not read. The
//! format has no check code. Units other than °F and psig are read from the column header when a
//! device writes them (°C, bar, kPa); those layouts are inferred, not seen.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::super::units::{self, PressureUnit};
use super::super::{DeviceResult, Parsed, ParsedCycle, Phase, Sample, Unreadable};
use super::{after, clock_seconds, kind_of_program, numbered, CycleLogParser};

pub struct Elara11;

const ID: &str = "tuttnauer-elara11";

impl CycleLogParser for Elara11 {
    fn id(&self) -> &'static str {
        ID
    }
    fn describe(&self) -> &'static str {
        "Tuttnauer Elara 11 (cycle_NNNNNN.txt from the USB stick)"
    }
    fn sniff(&self, name: &str, text: &str) -> u8 {
        let mut score = 0u8;
        for (needle, points) in [
            ("Cycle Num:", 30),
            ("Ster. Temp.", 25),
            ("CLK 1:", 15),
            ("Ser. Num:", 10),
            ("Status:", 10),
        ] {
            if text.contains(needle) {
                score += points;
            }
        }
        if number_in_name(name).is_some() {
            score += 10;
        }
        score
    }
    fn parse(&self, name: &str, text: &str) -> Parsed {
        let mut out = Parsed::default();
        for (line, block) in records(text) {
            match record(name, line, &block) {
                Ok(c) => out.cycles.push(c),
                Err(reason) => out.unreadable.push(Unreadable { line, reason }),
            }
        }
        out
    }
}

fn number_in_name(name: &str) -> Option<i64> {
    let lower = name.to_ascii_lowercase();
    let digits = lower.strip_prefix("cycle_")?.strip_suffix(".txt")?;
    digits.parse().ok()
}

/// The file's records: blocks between dashed lines that hold anything, with their first line.
fn records(text: &str) -> Vec<(usize, Vec<(usize, &str)>)> {
    let mut out = Vec::new();
    let mut current: Vec<(usize, &str)> = Vec::new();
    for (n, l) in numbered(text) {
        let t = l.trim();
        if t.len() >= 3 && t.chars().all(|c| c == '-') {
            if current.iter().any(|(_, l)| !l.trim().is_empty()) {
                out.push((current[0].0, std::mem::take(&mut current)));
            }
            current.clear();
        } else {
            current.push((n, l));
        }
    }
    if current.iter().any(|(_, l)| !l.trim().is_empty()) {
        out.push((current[0].0, current));
    }
    // A record starts at its first non-blank line.
    out.into_iter()
        .map(|(_, lines)| {
            let first = lines
                .iter()
                .find(|(_, l)| !l.trim().is_empty())
                .map_or(1, |(n, _)| *n);
            (first, lines)
        })
        .collect()
}

fn date(s: &str) -> Option<NaiveDate> {
    let mut parts = s.trim().split('/');
    let d: u32 = parts.next()?.trim().parse().ok()?;
    let m = parts.next()?.trim().to_ascii_uppercase();
    let y: i32 = parts.next()?.trim().parse().ok()?;
    let month = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ]
    .iter()
    .position(|x| *x == m)
    .map(|i| i as u32 + 1)
    .or_else(|| m.parse().ok())?;
    NaiveDate::from_ymd_opt(y, month, d)
}

fn time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M:%S").ok()
}

/// A value with its unit, e.g. `273.2 °F`: the number in °C.
fn temperature(s: &str) -> Option<super::super::Reading> {
    let v = units::number(s.split_whitespace().next()?)?;
    Some(if s.contains('F') {
        units::fahrenheit(s, v)
    } else {
        units::celsius(s, v)
    })
}

fn record(name: &str, first: usize, lines: &[(usize, &str)]) -> Result<ParsedCycle, String> {
    let mut day = None;
    let mut start = None;
    let mut end = None;
    let mut number = None;
    let mut serial = None;
    let mut model = None;
    let mut firmware = None;
    let mut program = None;
    let mut set_temperature = None;
    let mut set_hold = None;
    let mut status = None;
    let mut alarm = None;
    let mut fahrenheit = true;
    let mut pressure_unit = PressureUnit::Psig;
    let mut samples = Vec::new();
    let mut clock1 = Vec::new();
    let mut clock2 = Vec::new();
    let mut phases: Vec<Phase> = Vec::new();
    let mut notes = Vec::new();
    let mut header_done = false;
    for (n, raw) in lines {
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        if let Some(v) = after(l, "Date:") {
            day = Some(date(v).ok_or(format!("line {n}: the date \"{v}\" is not DD/MON/YYYY"))?);
        } else if let Some(v) = after(l, "Time:") {
            let t = time(v).ok_or(format!("line {n}: the time \"{v}\" is not hh:mm:ss"))?;
            if start.is_none() {
                start = Some(t);
            } else {
                end = Some(t);
            }
        } else if let Some(v) = after(l, "Ser. Num:") {
            serial = Some(v.to_owned());
        } else if let Some(v) = after(l, "Model:") {
            model = Some(v.to_owned());
        } else if let Some(v) = after(l, "Software vers.:") {
            firmware = Some(v.to_owned());
        } else if after(l, "Version:").is_some() {
        } else if let Some(v) = after(l, "Cycle Num:") {
            number = Some(
                v.parse::<i64>()
                    .map_err(|_| format!("line {n}: the cycle number \"{v}\" is not a number"))?,
            );
        } else if let Some(v) = after(l, "Ster. Temp.") {
            set_temperature = temperature(v);
        } else if let Some(v) = after(l, "Ster. Time") {
            set_hold = units::number(v.split_whitespace().next().unwrap_or(""))
                .map(|m| units::seconds(v, m * 60.0));
        } else if after(l, "Dry Time").is_some() || after(l, "End Temperature").is_some() {
        } else if let Some(v) = after(l, "Status:") {
            status = Some(v.to_owned());
        } else if let Some(v) = after(l, "Cycle Error:") {
            alarm = Some(format!("Cycle Error: {v}"));
        } else if l.eq_ignore_ascii_case("Cancelled by user") {
            alarm = Some(l.to_owned());
        } else if after(l, "Operator:").is_some() {
        } else if let Some(v) = after(l, "CLK 1") {
            clock1.push(time(v).ok_or(format!("line {n}: CLK 1 \"{v}\" is not hh:mm:ss"))?);
        } else if let Some(v) = after(l, "CLK 2") {
            clock2.push(time(v).ok_or(format!("line {n}: CLK 2 \"{v}\" is not hh:mm:ss"))?);
        } else if l.starts_with("Time") && (l.contains('F') || l.contains('C')) {
            // The column header: which units the rows are in.
            fahrenheit = l.contains("°F") || l.contains(" F");
            let lower = l.to_ascii_lowercase();
            pressure_unit = if lower.contains("kpa") {
                PressureUnit::KpaAbsolute
            } else if lower.contains("bar") {
                PressureUnit::BarRelative
            } else {
                PressureUnit::Psig
            };
            header_done = true;
        } else if let Some(s) = sample(l, fahrenheit, pressure_unit) {
            if let (Some(p), Some(t)) = (&s.phase, s.elapsed_s) {
                if phases.last().is_none_or(|last| &last.name != p) {
                    phases.push(Phase {
                        name: p.clone(),
                        elapsed_s: Some(t),
                        duration_s: None,
                    });
                }
            }
            samples.push(s);
        } else if number.is_some() && program.is_none() && !header_done {
            program = Some(l.to_owned());
        } else {
            notes.push(format!("line {n}: {l}"));
        }
    }
    let number = number.ok_or("no \"Cycle Num:\" line")?;
    let day = day.ok_or("no \"Date:\" line")?;
    let start = start.ok_or("no \"Time:\" line for the start")?;
    let started = NaiveDateTime::new(day, start);
    let program = program.unwrap_or_default();
    let mut c = ParsedCycle::new(ID, first, number, started);
    c.kind = kind_of_program(&program);
    c.program = program;
    c.serial = serial;
    c.model = model;
    c.firmware = firmware;
    c.set_temperature_c = set_temperature;
    c.set_hold_s = set_hold;
    c.finished_local = end.map(|e| {
        let t = NaiveDateTime::new(day, e);
        if t < started {
            t.checked_add_signed(chrono::Duration::days(1)).unwrap_or(t)
        } else {
            t
        }
    });
    // The hold runs from the first CLK 1 to the last; CLK 2 is the second clock, kept to compare.
    if let (Some(a), Some(b)) = (clock1.first(), clock1.last()) {
        if clock1.len() >= 2 {
            c.hold_s = Some((*b - *a).num_seconds().rem_euclid(86_400));
        }
    }
    for (a, b) in clock1.iter().zip(&clock2) {
        let skew = (*a - *b).num_seconds().abs();
        if skew > 5 {
            c.notes.push(format!(
                "the two clocks disagree by {skew} s ({a} against {b})"
            ));
        }
    }
    c.phases = phases;
    c.samples = samples;
    c.result = match status.as_deref().map(str::to_ascii_lowercase) {
        Some(s) if s.contains("failed") || s.contains("error") || s.contains("cancel") => {
            DeviceResult::Failed
        }
        Some(s) if s.contains("ended") || s.contains("done") => DeviceResult::Passed,
        _ => DeviceResult::NotStated,
    };
    if alarm.is_some() && c.result == DeviceResult::Passed {
        c.result = DeviceResult::Failed;
    }
    c.result_text = status;
    c.alarm = alarm;
    c.name_fields.cycle_number = number_in_name(name);
    c.notes.extend(notes);
    Ok(c)
}

/// A sample row: `S 00:26:31 274.9 30.62` (the phase letter is blank at the end of a cycle).
fn sample(l: &str, fahrenheit: bool, unit: PressureUnit) -> Option<Sample> {
    let parts: Vec<&str> = l.split_whitespace().collect();
    let (phase, rest) = match parts.as_slice() {
        [p, rest @ ..] if p.len() == 1 && p.chars().all(|c| c.is_ascii_alphabetic()) => {
            (Some((*p).to_owned()), rest)
        }
        rest => (None, rest),
    };
    let [t, temp, press] = rest else {
        return None;
    };
    let elapsed = clock_seconds(t)?;
    let tv = units::number(temp)?;
    let temperature = if fahrenheit {
        units::fahrenheit(temp, tv)
    } else {
        units::celsius(temp, tv)
    };
    let pv = units::number(press)?;
    let pressure = if press.to_ascii_lowercase().ends_with("in") {
        units::pressure(press, pv, PressureUnit::InHgVacuum)
    } else {
        units::pressure(press, pv, unit)
    };
    Some(Sample {
        elapsed_s: Some(elapsed),
        phase,
        temperature_c: Some(temperature),
        pressure_kpa: Some(pressure),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sterilisation::import::CycleKind;

    pub const GOOD: &str = "------------------------
Date: 05/MAR/2024
Time: 09:12:40
Ser. Num: 12345678
Model: ELARA11
Version: 1
Software vers.: 2.0.3.98
Cycle Num: 000812
WRAPPED INSTU
Ster. Temp. 273.2 °F
Ster. Time 4.0 min
Dry Time 20 min
End Temperature 248 °F
  Time     °F    Psig
A 00:00:06 140.1 00.41
A 00:03:06 151.3 24.90In
H 00:15:02 221.0 05.80
CLK 1: 09:39:10
CLK 2: 09:39:10
S 00:26:31 274.9 30.62
S 00:30:31 275.3 30.95
CLK 1: 09:43:11
CLK 2: 09:43:11
E 00:30:33 275.1 30.80
D 00:31:50 210.2 20.10In
Status: Cycle Ended
Time: 10:05:02
Operator: ____________
------------------------
";

    #[test]
    fn reads_the_documented_layout() {
        assert!(Elara11.sniff("cycle_000812.txt", GOOD) >= 90);
        let p = Elara11.parse("cycle_000812.txt", GOOD);
        assert!(p.unreadable.is_empty(), "{:?}", p.unreadable);
        let c = &p.cycles[0];
        assert_eq!(c.cycle_number, 812);
        assert_eq!(c.serial.as_deref(), Some("12345678"));
        assert_eq!(c.program, "WRAPPED INSTU");
        assert_eq!(c.kind, CycleKind::Load);
        assert_eq!(c.result, DeviceResult::Passed);
        assert_eq!(c.hold_s, Some(241));
        assert_eq!(c.samples.len(), 7);
        let s = &c.samples[3];
        assert!((s.temperature_c.as_ref().unwrap().value - 134.944).abs() < 0.01);
        assert!((s.pressure_kpa.as_ref().unwrap().value - 312.4).abs() < 0.2);
        assert_eq!(s.pressure_kpa.as_ref().unwrap().original, "30.62");
        let vac = &c.samples[1];
        assert!(vac.pressure_kpa.as_ref().unwrap().value < 20.0);
        assert_eq!(c.started_local.to_string(), "2024-03-05 09:12:40");
        assert_eq!(c.finished_local.unwrap().to_string(), "2024-03-05 10:05:02");
        assert_eq!(c.name_fields.cycle_number, Some(812));
        assert!((c.set_temperature_c.as_ref().unwrap().value - 134.0).abs() < 0.01);
        assert_eq!(c.set_hold_s.as_ref().unwrap().value, 240.0);
    }

    #[test]
    fn an_unreadable_record_is_listed_with_its_line() {
        let two = format!("{GOOD}Date: 06/MAR/2024\nTime: 08:00:00\nStatus: Cycle Ended\n");
        let p = Elara11.parse("cycles.txt", &two);
        assert_eq!(p.cycles.len(), 1);
        assert_eq!(p.unreadable.len(), 1);
        assert_eq!(p.unreadable[0].line, 30);
        assert!(p.unreadable[0].reason.contains("Cycle Num"));
    }
}
