//! Data loggers and any other maker: a CSV file read through a mapping the owner saves for the
//! steriliser (which column is the cycle number, the start, the end, the temperature, the pressure
//! and its unit, the program and the result). Consecutive rows with the same cycle number are one
//! cycle, so both a summary (a row per cycle) and a logger's samples (a row per reading) are read.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::super::units::{self, PressureUnit};
use super::super::{DeviceResult, Parsed, ParsedCycle, Sample, Unreadable};
use super::{kind_of_program, CycleLogParser};
use crate::error::FieldError;

pub const CSV_FORMAT: &str = "csv-mapping";

/// How to read a steriliser's CSV files. Columns are named as in the file's header row
/// (any case), or by position as `#1`, `#2`….
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    #[schema(example = "Cycle")]
    pub cycle_number: String,
    #[schema(example = "Start")]
    pub started_at: String,
    pub finished_at: Option<String>,
    /// How the times are written, in strftime form; the device's local time.
    #[serde(default = "default_time_format")]
    #[schema(example = "%d/%m/%Y %H:%M:%S")]
    pub time_format: String,
    pub temperature: Option<String>,
    /// `c` or `f`.
    #[serde(default = "default_temperature_unit")]
    pub temperature_unit: String,
    pub pressure: Option<String>,
    /// `kpa` (absolute), `kpa_relative`, `bar` (relative), `bar_abs`, `psig`, `psia`, `mpa`.
    #[serde(default = "default_pressure_unit")]
    pub pressure_unit: String,
    pub program: Option<String>,
    pub result: Option<String>,
    /// The result column's words for a passed cycle; any other word is a failure.
    #[serde(default = "default_passed")]
    pub passed_values: Vec<String>,
    pub serial: Option<String>,
    /// The program's minimum sterilising temperature, °C, when the file does not say.
    pub set_temperature_c: Option<f64>,
    /// The program's minimum hold, minutes, when the file does not say.
    pub set_hold_minutes: Option<f64>,
    /// `,`, `;` or a tab; found from the header when not given.
    pub delimiter: Option<String>,
}

fn default_time_format() -> String {
    "%Y-%m-%d %H:%M:%S".into()
}
fn default_temperature_unit() -> String {
    "c".into()
}
fn default_pressure_unit() -> String {
    "kpa".into()
}
fn default_passed() -> Vec<String> {
    ["pass", "passed", "ok", "complete", "completed", "success"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

impl CsvMapping {
    pub fn example() -> Self {
        Self {
            cycle_number: "Cycle".into(),
            started_at: "Start".into(),
            finished_at: Some("End".into()),
            time_format: default_time_format(),
            temperature: Some("Temperature".into()),
            temperature_unit: default_temperature_unit(),
            pressure: Some("Pressure".into()),
            pressure_unit: default_pressure_unit(),
            program: Some("Program".into()),
            result: Some("Result".into()),
            passed_values: default_passed(),
            serial: None,
            set_temperature_c: None,
            set_hold_minutes: None,
            delimiter: None,
        }
    }

    /// Every problem with the mapping at once.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (field, v) in [
            ("cycle_number", Some(&self.cycle_number)),
            ("started_at", Some(&self.started_at)),
            ("finished_at", self.finished_at.as_ref()),
            ("temperature", self.temperature.as_ref()),
            ("pressure", self.pressure.as_ref()),
            ("program", self.program.as_ref()),
            ("result", self.result.as_ref()),
            ("serial", self.serial.as_ref()),
        ] {
            if let Some(v) = v {
                if v.trim().is_empty() || v.len() > 100 {
                    errors.push(FieldError::new(
                        field,
                        "must name a column (1 to 100 characters) or give its position as #1, #2…",
                    ));
                }
            }
        }
        let probe = chrono::NaiveDate::from_ymd_opt(2024, 3, 14)
            .and_then(|d| d.and_hms_opt(10, 2, 0))
            .unwrap_or_default();
        let written = {
            use std::fmt::Write;
            let mut s = String::new();
            write!(s, "{}", probe.format(&self.time_format)).map(|_| s)
        };
        if self.time_format.len() > 60
            || written
                .ok()
                .and_then(|s| NaiveDateTime::parse_from_str(&s, &self.time_format).ok())
                != Some(probe)
        {
            errors.push(FieldError::new(
                "time_format",
                "must give the date and the time to the minute at least, e.g. %d/%m/%Y %H:%M:%S",
            ));
        }
        if !matches!(
            self.temperature_unit.to_ascii_lowercase().as_str(),
            "c" | "f"
        ) {
            errors.push(FieldError::new("temperature_unit", "must be c or f"));
        }
        if PressureUnit::parse(&self.pressure_unit).is_none() {
            errors.push(FieldError::new(
                "pressure_unit",
                "must be one of kpa, kpa_relative, bar, bar_abs, psig, psia, mpa",
            ));
        }
        if let Some(t) = self.set_temperature_c {
            if !(100.0..=140.0).contains(&t) {
                errors.push(FieldError::new(
                    "set_temperature_c",
                    "must be from 100 to 140",
                ));
            }
        }
        if let Some(h) = self.set_hold_minutes {
            if !(h > 0.0 && h <= 240.0) {
                errors.push(FieldError::new(
                    "set_hold_minutes",
                    "must be more than 0 and at most 240",
                ));
            }
        }
        if let Some(d) = &self.delimiter {
            if !matches!(d.as_str(), "," | ";" | "\t") {
                errors.push(FieldError::new(
                    "delimiter",
                    "must be a comma, a semicolon or a tab",
                ));
            }
        }
        if self.passed_values.is_empty() || self.passed_values.len() > 20 {
            errors.push(FieldError::new(
                "passed_values",
                "must list from 1 to 20 words the result column uses for a passed cycle",
            ));
        }
        errors
    }

    fn delimiter_for(&self, header: &str) -> u8 {
        match self.delimiter.as_deref() {
            Some(";") => b';',
            Some("\t") => b'\t',
            Some(_) => b',',
            None => [b',', b';', b'\t']
                .into_iter()
                .max_by_key(|d| header.bytes().filter(|b| b == d).count())
                .unwrap_or(b','),
        }
    }

    fn columns(&self, header: &[String]) -> Result<Columns, String> {
        let find = |name: &str| -> Result<usize, String> {
            if let Some(i) = name.strip_prefix('#').and_then(|n| n.parse::<usize>().ok()) {
                return (1..=header.len())
                    .contains(&i)
                    .then_some(i - 1)
                    .ok_or(format!("the file has no column {name}"));
            }
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name.trim()))
                .ok_or(format!("the header row has no column \"{name}\""))
        };
        let opt = |name: &Option<String>| name.as_deref().map(find).transpose();
        Ok(Columns {
            number: find(&self.cycle_number)?,
            started: find(&self.started_at)?,
            finished: opt(&self.finished_at)?,
            temperature: opt(&self.temperature)?,
            pressure: opt(&self.pressure)?,
            program: opt(&self.program)?,
            result: opt(&self.result)?,
            serial: opt(&self.serial)?,
        })
    }
}

struct Columns {
    number: usize,
    started: usize,
    finished: Option<usize>,
    temperature: Option<usize>,
    pressure: Option<usize>,
    program: Option<usize>,
    result: Option<usize>,
    serial: Option<usize>,
}

fn header_of(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

fn reader(text: &str, delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes())
}

impl CycleLogParser for &CsvMapping {
    fn id(&self) -> &'static str {
        CSV_FORMAT
    }
    fn describe(&self) -> &'static str {
        "CSV with the steriliser's saved column mapping (data loggers, other makers)"
    }
    fn sniff(&self, name: &str, text: &str) -> u8 {
        let header = header_of(text);
        let delimiter = self.delimiter_for(header);
        let Some(Ok(first)) = reader(header, delimiter).records().next() else {
            return 0;
        };
        let cells: Vec<String> = first.iter().map(str::to_owned).collect();
        let mut score = 0u8;
        if cells.len() >= 2 && self.columns(&cells).is_ok() {
            score += 80;
        }
        if name.to_ascii_lowercase().ends_with(".csv") {
            score += 15;
        }
        score
    }
    fn parse(&self, _name: &str, text: &str) -> Parsed {
        let mut out = Parsed::default();
        let delimiter = self.delimiter_for(header_of(text));
        let mut rows = reader(text, delimiter).into_records();
        let header: Vec<String> = match rows.next() {
            Some(Ok(h)) => h.iter().map(str::to_owned).collect(),
            _ => {
                out.unreadable.push(Unreadable {
                    line: 1,
                    reason: "no header row".into(),
                });
                return out;
            }
        };
        let cols = match self.columns(&header) {
            Ok(c) => c,
            Err(reason) => {
                out.unreadable.push(Unreadable { line: 1, reason });
                return out;
            }
        };
        let fahrenheit = self.temperature_unit.eq_ignore_ascii_case("f");
        let unit = PressureUnit::parse(&self.pressure_unit).unwrap_or(PressureUnit::KpaAbsolute);
        // Rows grouped by cycle number, in the order they come.
        let mut groups: Vec<(i64, usize, Vec<Row>, Option<String>)> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        let mut bad_lines: Vec<Unreadable> = Vec::new();
        for record in rows {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line() as usize);
                    bad_lines.push(Unreadable {
                        line,
                        reason: format!("not readable as CSV: {e}"),
                    });
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line() as usize);
            if record.iter().all(str::is_empty) {
                continue;
            }
            let cell = |i: usize| record.get(i).unwrap_or("").to_owned();
            let n = cell(cols.number);
            let number = (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                .then(|| n.parse::<i64>().ok())
                .flatten();
            let Some(number) = number else {
                bad_lines.push(Unreadable {
                    line,
                    reason: format!("the cycle number \"{n}\" is not a whole number"),
                });
                continue;
            };
            let row = self.row(&record, &cols, fahrenheit, unit);
            let slot = *index.entry(number).or_insert_with(|| {
                groups.push((number, line, Vec::new(), None));
                groups.len() - 1
            });
            match row {
                Ok(r) => groups[slot].2.push(r),
                Err(reason) => {
                    if groups[slot].3.is_none() {
                        groups[slot].3 = Some(format!("line {line}: {reason}"));
                    }
                }
            }
        }
        for (number, line, rows, error) in groups {
            if let Some(reason) = error {
                out.unreadable.push(Unreadable {
                    line,
                    reason: format!("cycle {number}: {reason}"),
                });
                continue;
            }
            out.cycles.push(self.cycle(number, line, rows));
        }
        out.unreadable.extend(bad_lines);
        out.unreadable.sort_by_key(|u| u.line);
        out
    }
}

struct Row {
    started: NaiveDateTime,
    finished: Option<NaiveDateTime>,
    temperature: Option<super::super::Reading>,
    pressure: Option<super::super::Reading>,
    program: Option<String>,
    result: Option<String>,
    serial: Option<String>,
}

impl CsvMapping {
    fn row(
        &self,
        r: &csv::StringRecord,
        cols: &Columns,
        fahrenheit: bool,
        unit: PressureUnit,
    ) -> Result<Row, String> {
        let cell = |i: usize| r.get(i).unwrap_or("").trim();
        let time = |i: usize, what: &str| -> Result<NaiveDateTime, String> {
            NaiveDateTime::parse_from_str(cell(i), &self.time_format).map_err(|_| {
                format!(
                    "the {what} \"{}\" is not in the form {}",
                    cell(i),
                    self.time_format
                )
            })
        };
        let text = |i: Option<usize>| i.map(cell).filter(|s| !s.is_empty()).map(str::to_owned);
        let started = time(cols.started, "start")?;
        let finished = match cols.finished {
            Some(i) if !cell(i).is_empty() => Some(time(i, "end")?),
            _ => None,
        };
        let temperature = match cols.temperature.map(cell).filter(|s| !s.is_empty()) {
            Some(s) => {
                let v =
                    units::number(s).ok_or(format!("the temperature \"{s}\" is not a number"))?;
                Some(if fahrenheit {
                    units::fahrenheit(s, v)
                } else {
                    units::celsius(s, v)
                })
            }
            None => None,
        };
        let pressure = match cols.pressure.map(cell).filter(|s| !s.is_empty()) {
            Some(s) => {
                let v = units::number(s).ok_or(format!("the pressure \"{s}\" is not a number"))?;
                Some(units::pressure(s, v, unit))
            }
            None => None,
        };
        Ok(Row {
            started,
            finished,
            temperature,
            pressure,
            program: text(cols.program),
            result: text(cols.result),
            serial: text(cols.serial),
        })
    }

    fn cycle(&self, number: i64, line: usize, rows: Vec<Row>) -> ParsedCycle {
        let started = rows.iter().map(|r| r.started).min().unwrap_or_default();
        let mut c = ParsedCycle::new(CSV_FORMAT, line, number, started);
        c.finished_local = rows.iter().filter_map(|r| r.finished).max().or_else(|| {
            (rows.len() > 1)
                .then(|| rows.iter().map(|r| r.started).max())
                .flatten()
        });
        c.program = rows
            .iter()
            .find_map(|r| r.program.clone())
            .unwrap_or_default();
        c.kind = kind_of_program(&c.program);
        c.serial = rows.iter().find_map(|r| r.serial.clone());
        c.set_temperature_c = self
            .set_temperature_c
            .map(|t| units::celsius(&format!("{t} °C (mapping)"), t));
        c.set_hold_s = self
            .set_hold_minutes
            .map(|m| units::seconds(&format!("{m} min (mapping)"), m * 60.0));
        let result = rows.iter().rev().find_map(|r| r.result.clone());
        c.result = match &result {
            Some(r) if self.passed_values.iter().any(|p| p.eq_ignore_ascii_case(r)) => {
                DeviceResult::Passed
            }
            Some(_) => DeviceResult::Failed,
            None => DeviceResult::NotStated,
        };
        c.result_text = result;
        let one_row = rows.len() == 1;
        for r in rows {
            if r.temperature.is_none() && r.pressure.is_none() {
                continue;
            }
            c.samples.push(Sample {
                elapsed_s: (!one_row).then(|| (r.started - started).num_seconds()),
                phase: None,
                temperature_c: r.temperature,
                pressure_kpa: r.pressure,
            });
        }
        // A summary row's temperature and pressure are the plateau's, not a curve.
        if one_row {
            if let Some(s) = c.samples.pop() {
                c.reported_max = Some((s.temperature_c, s.pressure_kpa));
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_summaries_and_samples_and_lists_bad_rows() {
        let m = CsvMapping::example();
        assert!(m.validate().is_empty());
        let text = "Cycle,Start,End,Temperature,Pressure,Program,Result\n\
                    101,2024-03-14 09:00:00,2024-03-14 09:40:00,134.5,305,Wrapped,pass\n\
                    102,2024-03-14 10:00:00,2024-03-14 10:40:00,x,305,Wrapped,pass\n\
                    103,2024-03-14 11:00:00,2024-03-14 11:40:00,134.1,301,Wrapped,FAIL\n";
        assert!((&m).sniff("log.csv", text) >= 90);
        let p = (&m).parse("log.csv", text);
        assert_eq!(p.cycles.len(), 2);
        assert_eq!(p.cycles[1].result, DeviceResult::Failed);
        assert_eq!(p.unreadable.len(), 1);
        assert_eq!(p.unreadable[0].line, 3);
        assert!(
            p.unreadable[0].reason.contains("\"x\""),
            "{}",
            p.unreadable[0].reason
        );
        let mut bad = CsvMapping::example();
        bad.time_format = "%H".into();
        bad.pressure_unit = "furlongs".into();
        assert_eq!(bad.validate().len(), 2);
    }
}
