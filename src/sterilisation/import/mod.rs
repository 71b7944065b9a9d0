//! Cycle records read from the steriliser's own files (an SD card, a USB stick, a portal download,
//! a data logger's CSV): parsed into one shape whatever the maker, normalised to °C and absolute
//! kPa with the device's original text kept beside each value, and checked against physics and
//! against the device's own sequence. Pure: the files come in as bytes and nothing here reads or
//! writes the database.

pub mod archive;
pub mod checks;
pub mod decode;
pub mod parsers;
pub mod steam;
pub mod units;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use parsers::{detect, Detection, ParserScore};

/// A value the device wrote, normalised (°C, kPa absolute, seconds), with the text it wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reading {
    pub value: f64,
    /// Exactly as the device wrote it, with its unit where it gave one.
    pub original: String,
}

/// One line of the device's curve: where in the cycle, and what it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sample {
    /// Seconds from the start of the cycle, where the device gives it.
    pub elapsed_s: Option<i64>,
    /// The device's phase code (e.g. `S` for sterilising on a Tuttnauer), where it gives one.
    pub phase: Option<String>,
    /// Chamber temperature, °C.
    pub temperature_c: Option<Reading>,
    /// Chamber pressure, kPa absolute.
    pub pressure_kpa: Option<Reading>,
}

/// A phase the device reports with its timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Phase {
    /// The device's name or code for the phase, e.g. `STERILIZING`, `DVe`.
    pub name: String,
    /// Seconds from the start of the cycle when the phase began or ended, as the device counts.
    pub elapsed_s: Option<i64>,
    /// How long the phase lasted, where the device says.
    pub duration_s: Option<i64>,
}

/// What the device itself concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceResult {
    Passed,
    Failed,
    /// The file does not say (an incomplete record, or a layout without a result line).
    NotStated,
}

/// What the cycle was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CycleKind {
    /// A load of instruments.
    Load,
    /// A Bowie-Dick or Helix air-removal test.
    AirRemovalTest,
    /// A vacuum (leak) test.
    VacuumTest,
}

/// A maker's own check code (W&H's O.D.Code, SciCan's digital signature). Their algorithms are
/// not public, so a code is kept as evidence and never called valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VendorCheck {
    pub scheme: String,
    pub value: String,
}

/// What a file's name says about the cycle inside, for the formats whose names carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NameFields {
    pub cycle_number: Option<i64>,
    pub serial: Option<String>,
    pub date: Option<chrono::NaiveDate>,
    pub alarm: Option<String>,
}

/// One cycle as a device recorded it, in the same shape whatever the maker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParsedCycle {
    /// The parser that read it, e.g. `tuttnauer-elara11`.
    pub format: String,
    /// The line of the file where the cycle's record begins (1 for a file of one cycle).
    pub line: usize,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub serial: Option<String>,
    pub cycle_number: i64,
    pub kind: CycleKind,
    pub program: String,
    pub set_temperature_c: Option<Reading>,
    pub set_hold_s: Option<Reading>,
    /// The device's own clock, as it printed it (no zone: the clinic's zone applies).
    pub started_local: NaiveDateTime,
    pub finished_local: Option<NaiveDateTime>,
    pub phases: Vec<Phase>,
    pub samples: Vec<Sample>,
    /// The plateau's minimum and maximum as the device reported them: (°C, kPa absolute).
    pub reported_min: Option<(Option<Reading>, Option<Reading>)>,
    pub reported_max: Option<(Option<Reading>, Option<Reading>)>,
    /// The hold (sterilising) time, from the device's own markers.
    pub hold_s: Option<i64>,
    pub result: DeviceResult,
    /// The device's words for its result, e.g. `Cycle Ended`, `LOAD STERILE`.
    pub result_text: Option<String>,
    /// An alarm or error the device reported.
    pub alarm: Option<String>,
    pub vendor_check: Option<VendorCheck>,
    /// Whether this format always ends its records with a vendor check code.
    pub check_expected: bool,
    pub name_fields: NameFields,
    /// Things the parser read but could not place, for a person to look at.
    pub notes: Vec<String>,
}

/// A part of a file that could not be read as a cycle, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Unreadable {
    /// The line where the unreadable record begins (1-based).
    pub line: usize,
    pub reason: String,
}

/// A file as it came: its name (with its folder inside an archive) and bytes.
#[derive(Debug, Clone)]
pub struct RawFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl RawFile {
    /// The last part of the name: parsers read the file name, not the folder.
    pub fn base_name(&self) -> &str {
        self.name.rsplit(['/', '\\']).next().unwrap_or(&self.name)
    }
}

/// What one file gave: the cycles read and the parts that could not be.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub cycles: Vec<ParsedCycle>,
    pub unreadable: Vec<Unreadable>,
}

impl ParsedCycle {
    /// A cycle with only what every record has; parsers fill in the rest.
    pub fn new(format: &str, line: usize, cycle_number: i64, started_local: NaiveDateTime) -> Self {
        Self {
            format: format.to_owned(),
            line,
            model: None,
            firmware: None,
            serial: None,
            cycle_number,
            kind: CycleKind::Load,
            program: String::new(),
            set_temperature_c: None,
            set_hold_s: None,
            started_local,
            finished_local: None,
            phases: Vec::new(),
            samples: Vec::new(),
            reported_min: None,
            reported_max: None,
            hold_s: None,
            result: DeviceResult::NotStated,
            result_text: None,
            alarm: None,
            vendor_check: None,
            check_expected: false,
            name_fields: NameFields::default(),
            notes: Vec::new(),
        }
    }
}
