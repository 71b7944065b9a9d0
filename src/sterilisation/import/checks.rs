//! Checks that find imported records that do not add up: against physics (saturated steam, the
//! hold the program asks for, a plateau that looks measured), against the file itself (its name,
//! its signature line, the device's own minimum and maximum) and against the device's sequence
//! (numbers that repeat, go back or skip; times out of order or overlapping; the same curve under
//! two numbers). Pure: the caller gathers the device's other cycles.

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::units::{ClockProblem, Placed};
use super::{steam, DeviceResult, ParsedCycle, Sample};

/// EN 285 (and EN 13060 for small sterilisers): during the plateau the measured temperature and
/// the one calculated from the chamber pressure for saturated steam agree within 2 K.
pub const STEAM_TOLERANCE_K: f64 = 2.0;
/// A reported minimum or maximum is allowed the display's rounding against the samples.
const REPORT_TOLERANCE: f64 = 0.25;

/// What a check found, with the evidence a person needs to look into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Warning {
    /// Stable code, e.g. `number_repeats`.
    pub check: String,
    pub message: String,
    pub evidence: String,
}

impl Warning {
    fn new(check: &str, message: String, evidence: String) -> Self {
        Self {
            check: check.to_owned(),
            message,
            evidence,
        }
    }
}

/// What the import concluded about a cycle: the device's result and Aseptic's physics together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportedOutcome {
    /// The device passed it and the physics agree.
    Pass,
    /// The device failed it, or the physics show it could not have sterilised.
    Fail,
    /// The file does not say how the cycle ended: a person must look at the device's record.
    NotStated,
}

/// Another cycle of the same steriliser, already recorded or in the same upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub id: String,
    pub cycle_number: i64,
    pub started: NaiveDateTime,
    pub finished: Option<NaiveDateTime>,
    pub fingerprint: Option<String>,
    pub vendor_check: Option<String>,
}

/// The facts the checks read about one cycle.
pub struct Candidate<'a> {
    pub cycle: &'a ParsedCycle,
    /// Start and end placed in UTC in the clinic's zone.
    pub started: Placed,
    pub finished: Option<Placed>,
    pub fingerprint: Option<String>,
    /// The serial number of the steriliser the file was imported for.
    pub registered_serial: &'a str,
}

/// What was measured, without what identifies the record (its number, its times, its name):
/// two cycles with the same fingerprint carry the same curve or the same measured values.
pub fn fingerprint(c: &ParsedCycle) -> Option<String> {
    let mut h = Sha256::new();
    let mut any = false;
    for s in &c.samples {
        let t = s.temperature_c.as_ref().map(|r| r.original.as_str());
        let p = s.pressure_kpa.as_ref().map(|r| r.original.as_str());
        h.update(format!("{:?}|{:?}|{:?}|{:?};", s.phase, s.elapsed_s, t, p));
        any = true;
    }
    for r in [&c.reported_min, &c.reported_max].into_iter().flatten() {
        h.update(format!(
            "{:?}|{:?};",
            r.0.as_ref().map(|x| &x.original),
            r.1.as_ref().map(|x| &x.original)
        ));
        any = true;
    }
    for p in &c.phases {
        h.update(format!("{}|{:?}|{:?};", p.name, p.elapsed_s, p.duration_s));
    }
    // Two phases' timings alone are too common to call a copy.
    any.then(|| hex::encode(h.finalize()))
}

fn normalised_serial(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// The samples of the plateau: the sterilising phase where the device names it (`S`, or a code
/// beginning `ST`), else those at or above the program's temperature (or within 3 K of the
/// highest) and above the atmosphere: a hot chamber under vacuum while drying is not a plateau.
pub fn plateau(c: &ParsedCycle) -> Vec<&Sample> {
    let named: Vec<&Sample> = c
        .samples
        .iter()
        .filter(|s| {
            s.phase.as_deref().is_some_and(|p| {
                let p = p.to_ascii_uppercase();
                p == "S" || p.starts_with("ST")
            })
        })
        .collect();
    if !named.is_empty() {
        return named;
    }
    let temps = c.samples.iter().filter_map(|s| s.temperature_c.as_ref());
    let Some(top) = temps.map(|r| r.value).reduce(f64::max) else {
        return Vec::new();
    };
    let floor = c
        .set_temperature_c
        .as_ref()
        .map_or(top - 3.0, |r| r.value.min(top));
    c.samples
        .iter()
        .filter(|s| {
            s.temperature_c
                .as_ref()
                .is_some_and(|t| t.value >= floor.max(100.0))
        })
        .filter(|s| {
            s.pressure_kpa
                .as_ref()
                .is_none_or(|p| p.value > super::units::ATMOSPHERE_KPA)
        })
        .collect()
}

fn values<'a>(
    samples: &'a [&Sample],
    pick: impl Fn(&Sample) -> Option<f64> + 'a,
) -> impl Iterator<Item = f64> + 'a {
    samples.iter().filter_map(move |s| pick(s))
}

/// The checks against the device's sequence: `me` among the steriliser's other imported cycles.
/// Run when the records are read, so a gap filled by a later upload stops showing.
pub fn check_sequence(me: &Neighbour, others: &[Neighbour]) -> Vec<Warning> {
    let mut w = Vec::new();
    let n = me.cycle_number;
    let others: Vec<&Neighbour> = others.iter().filter(|o| o.id != me.id).collect();
    // The device's sequence.
    let same_number: Vec<&Neighbour> = others
        .iter()
        .copied()
        .filter(|o| o.cycle_number == n)
        .collect();
    if let Some(o) = same_number.first() {
        w.push(Warning::new(
            "number_repeats",
            format!("Cycle number {n} is recorded twice for this steriliser."),
            format!("the other record started {} (record {})", o.started, o.id),
        ));
    }
    let before = others
        .iter()
        .filter(|o| o.cycle_number < n)
        .max_by_key(|o| o.cycle_number);
    let after = others
        .iter()
        .filter(|o| o.cycle_number > n)
        .min_by_key(|o| o.cycle_number);
    if let Some(b) = before {
        if b.cycle_number.saturating_add(1) < n {
            let missing = n.saturating_sub(b.cycle_number).saturating_sub(1);
            w.push(Warning::new(
                "number_skips",
                format!(
                    "Cycle numbers skip before {n}: {} {} missing.",
                    missing,
                    if missing == 1 { "is" } else { "are" }
                ),
                format!(
                    "cycle {} is the one before; {}–{} are not recorded",
                    b.cycle_number,
                    b.cycle_number.saturating_add(1),
                    n.saturating_sub(1)
                ),
            ));
        }
        if b.started > me.started {
            w.push(Warning::new(
                "time_order",
                format!(
                    "Cycle {n} started before cycle {}, which has a lower number.",
                    b.cycle_number
                ),
                format!(
                    "cycle {} started {}; cycle {n} started {}",
                    b.cycle_number, b.started, me.started
                ),
            ));
        }
    }
    if let Some(a) = after {
        if a.started < me.started && same_number.is_empty() {
            w.push(Warning::new(
                "number_goes_back",
                format!(
                    "Cycle {n} started after cycle {}: the device's counter went back.",
                    a.cycle_number
                ),
                format!(
                    "cycle {} started {}; cycle {n} started {}",
                    a.cycle_number, a.started, me.started
                ),
            ));
        }
    }
    if let Some(end) = me.finished {
        for o in others.iter().copied().filter(|o| o.cycle_number != n) {
            if let Some(o_end) = o.finished {
                if o.started < end && me.started < o_end {
                    w.push(Warning::new(
                        "overlap",
                        format!(
                            "Cycle {n} overlaps cycle {} on the same steriliser.",
                            o.cycle_number
                        ),
                        format!(
                            "{n}: {} to {}; {}: {} to {}",
                            me.started, end, o.cycle_number, o.started, o_end
                        ),
                    ));
                    break;
                }
            }
        }
    }
    if let Some(fp) = &me.fingerprint {
        if let Some(o) = others
            .iter()
            .find(|o| o.cycle_number != n && o.fingerprint.as_ref() == Some(fp))
        {
            w.push(Warning::new(
                "same_curve",
                format!(
                    "Cycle {n} has exactly the same measurements as cycle {}: one record was copied.",
                    o.cycle_number
                ),
                format!("same measured values as record {}", o.id),
            ));
        }
    }
    if let Some(v) = &me.vendor_check {
        if let Some(o) = others.iter().copied().find(|o| {
            o.cycle_number != n
                && o.vendor_check.as_ref() == Some(v)
                && o.fingerprint != me.fingerprint
        }) {
            w.push(Warning::new(
                "same_signature",
                format!(
                    "Cycle {n} carries the same check code as cycle {}, whose content differs.",
                    o.cycle_number
                ),
                format!("check code {v}"),
            ));
        }
    }

    w
}

/// The checks on one record by itself: its file, its signature, its clock and its physics.
pub fn check_record(c: &Candidate<'_>) -> Vec<Warning> {
    let mut w = Vec::new();
    let cy = c.cycle;
    let n = cy.cycle_number;
    // The file against itself.
    let nf = &cy.name_fields;
    let mut name_says = Vec::new();
    if let Some(x) = nf.cycle_number.filter(|x| *x != n) {
        name_says.push(format!("cycle {x} (the content says {n})"));
    }
    if let (Some(x), Some(s)) = (&nf.serial, &cy.serial) {
        if normalised_serial(x) != normalised_serial(s) {
            name_says.push(format!("serial {x} (the content says {s})"));
        }
    }
    if let Some(d) = nf.date.filter(|d| *d != cy.started_local.date()) {
        name_says.push(format!(
            "{d} (the content says {})",
            cy.started_local.date()
        ));
    }
    if !name_says.is_empty() {
        w.push(Warning::new(
            "name_disagrees",
            "The file's name disagrees with its content: it may have been renamed.".into(),
            format!("the name says {}", name_says.join(", ")),
        ));
    }
    let serial = cy.serial.as_deref().or(nf.serial.as_deref());
    if let Some(s) = serial {
        let (a, b) = (normalised_serial(s), normalised_serial(c.registered_serial));
        if !(a.is_empty() || a == b || b.ends_with(&a) || a.ends_with(&b)) {
            w.push(Warning::new(
                "serial_mismatch",
                "The record is from a device whose serial number is not this steriliser's.".into(),
                format!(
                    "the record says {s}; the steriliser is registered as {}",
                    c.registered_serial
                ),
            ));
        }
    }
    if cy.check_expected && cy.vendor_check.is_none() {
        w.push(Warning::new(
            "signature_missing",
            "The record has no check code, though this format always ends with one.".into(),
            format!("format {}: no signature line", cy.format),
        ));
    }
    for (what, placed) in [("start", Some(c.started)), ("end", c.finished)] {
        if let Some(p) = placed {
            if let Some(problem) = p.problem {
                w.push(Warning::new(
                    "clock_change",
                    match problem {
                        ClockProblem::DoesNotExist => format!(
                            "The {what} time falls in the hour the clocks went forward: no such local time exists."
                        ),
                        ClockProblem::Ambiguous => format!(
                            "The {what} time falls in the hour the clocks went back: it happened twice."
                        ),
                    },
                    format!(
                        "the device wrote {}; recorded as {} UTC (the device's clock may not have changed)",
                        if what == "start" { cy.started_local } else { cy.finished_local.unwrap_or(cy.started_local) },
                        p.utc
                    ),
                ));
            }
        }
    }

    // Physics.
    if let (Some(hold), Some(set)) = (cy.hold_s, &cy.set_hold_s) {
        if (hold as f64) + 1.0 < set.value {
            w.push(Warning::new(
                "hold_short",
                format!(
                    "The hold lasted {} but the program asks for {}.",
                    minutes(hold as f64),
                    minutes(set.value)
                ),
                format!("program {} ({})", cy.program, set.original),
            ));
        }
    }
    let plateau = plateau(cy);
    let temps: Vec<f64> = values(&plateau, |s| s.temperature_c.as_ref().map(|r| r.value)).collect();
    if let (Some(lo), Some(hi)) = (
        temps.iter().copied().reduce(f64::min),
        temps.iter().copied().reduce(f64::max),
    ) {
        let mut off = Vec::new();
        if let Some(t) = cy.reported_min.as_ref().and_then(|m| m.0.as_ref()) {
            if (t.value - lo).abs() > REPORT_TOLERANCE {
                off.push(format!(
                    "minimum {} against {lo:.1} °C in the samples",
                    t.original
                ));
            }
        }
        if let Some(t) = cy.reported_max.as_ref().and_then(|m| m.0.as_ref()) {
            if (t.value - hi).abs() > REPORT_TOLERANCE {
                off.push(format!(
                    "maximum {} against {hi:.1} °C in the samples",
                    t.original
                ));
            }
        }
        if !off.is_empty() {
            w.push(Warning::new(
                "min_max_disagree",
                "The device's reported minimum or maximum disagrees with its own samples.".into(),
                off.join("; "),
            ));
        }
    }
    let mut pairs: Vec<(f64, f64, String)> = plateau
        .iter()
        .filter_map(|s| {
            let t = s.temperature_c.as_ref()?;
            let p = s.pressure_kpa.as_ref()?;
            Some((
                t.value,
                p.value,
                format!("{} at {}", t.original, p.original),
            ))
        })
        .collect();
    for m in [&cy.reported_min, &cy.reported_max].into_iter().flatten() {
        if let (Some(t), Some(p)) = (&m.0, &m.1) {
            pairs.push((
                t.value,
                p.value,
                format!("{} at {}", t.original, p.original),
            ));
        }
    }
    let worst = pairs
        .iter()
        .filter_map(|(t, p, raw)| Some(((t - steam::temperature_c(*p)?), *p, raw)))
        .max_by(|a, b| a.0.abs().total_cmp(&b.0.abs()));
    if let Some((diff, p, raw)) = worst {
        if diff.abs() > STEAM_TOLERANCE_K {
            w.push(Warning::new(
                "not_saturated",
                format!(
                    "The plateau's temperature is {:.1} K from saturated steam at its pressure: the values do not fit together.",
                    diff.abs()
                ),
                format!(
                    "{raw}: saturated steam at {p:.0} kPa is {:.1} °C (allowed: {STEAM_TOLERANCE_K} K)",
                    steam::temperature_c(p).unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(evidence) = too_smooth(&plateau) {
        w.push(Warning::new(
            "too_smooth",
            "The plateau is too smooth to have been measured: real sensors vary.".into(),
            evidence,
        ));
    }
    w
}

fn minutes(seconds: f64) -> String {
    let s = seconds.round() as i64;
    format!("{} min {:02} s", s / 60, s % 60)
}

/// Four or more plateau readings that never vary, or that climb in exactly equal steps.
fn too_smooth(plateau: &[&Sample]) -> Option<String> {
    let series = |pick: &dyn Fn(&Sample) -> Option<String>| -> Vec<String> {
        plateau.iter().filter_map(|s| pick(s)).collect()
    };
    let temps = series(&|s| s.temperature_c.as_ref().map(|r| r.original.clone()));
    let pressures = series(&|s| s.pressure_kpa.as_ref().map(|r| r.original.clone()));
    if temps.len() >= 4 {
        let distinct_t: BTreeSet<&String> = temps.iter().collect();
        let distinct_p: BTreeSet<&String> = pressures.iter().collect();
        if distinct_t.len() == 1 && distinct_p.len() <= 1 {
            return Some(format!(
                "{} readings, every one {}{}",
                temps.len(),
                temps[0],
                pressures
                    .first()
                    .map(|p| format!(" at {p}"))
                    .unwrap_or_default()
            ));
        }
    }
    let t: Vec<f64> = plateau
        .iter()
        .filter_map(|s| s.temperature_c.as_ref().map(|r| r.value))
        .collect();
    if t.len() >= 5 {
        let steps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        if steps[0].abs() > 1e-9 && steps.iter().all(|d| (d - steps[0]).abs() < 1e-6) {
            return Some(format!(
                "{} readings rising by exactly {:.3} K each",
                t.len(),
                steps[0]
            ));
        }
    }
    None
}

/// The outcome: the device's result, and Aseptic's physics where they show the cycle could not
/// have sterilised (a short hold, a plateau below the program's temperature, or one that is not
/// saturated steam).
pub fn outcome(c: &ParsedCycle, warnings: &[Warning]) -> ImportedOutcome {
    let physics_failed = warnings
        .iter()
        .any(|w| matches!(w.check.as_str(), "hold_short" | "not_saturated"))
        || below_program(c);
    match c.result {
        DeviceResult::Failed => ImportedOutcome::Fail,
        _ if physics_failed => ImportedOutcome::Fail,
        DeviceResult::Passed => ImportedOutcome::Pass,
        DeviceResult::NotStated => ImportedOutcome::NotStated,
    }
}

/// A load whose highest plateau reading stays under the program's temperature.
fn below_program(c: &ParsedCycle) -> bool {
    let Some(set) = &c.set_temperature_c else {
        return false;
    };
    let top = c
        .samples
        .iter()
        .filter_map(|s| s.temperature_c.as_ref().map(|r| r.value))
        .chain(
            c.reported_max
                .iter()
                .filter_map(|m| m.0.as_ref().map(|r| r.value)),
        )
        .reduce(f64::max);
    c.kind == super::CycleKind::Load && top.is_some_and(|t| t + 0.05 < set.value)
}
