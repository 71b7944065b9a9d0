//! Lot types, their validation, and whether a lot may be used on a given day.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::gs1::gtin_check_digit;
use crate::error::FieldError;

pub use crate::jurisdiction::kinds::LotKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SterilisationMethod {
    EthyleneOxide,
    Gamma,
    EBeam,
    NotSterile,
}

crate::db::stored::stored_as!(SterilisationMethod, "sterilisation method", {
    EthyleneOxide => "ethylene_oxide",
    Gamma => "gamma",
    EBeam => "e_beam",
    NotSterile => "not_sterile",
});

/// The fields of a lot record (what is received, and what an amendment may correct).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LotInput {
    pub kind: LotKind,
    pub manufacturer: String,
    pub product_name: String,
    /// For cartridges the configuration, e.g. `1RL 0.30 mm`; for pigments the catalogue number.
    pub product_code: Option<String>,
    /// GTIN-8, -12, -13 or -14 when known; stored as 14 digits.
    pub gtin: Option<String>,
    pub lot_number: String,
    pub expiry_date: NaiveDate,
    pub sterilisation_method: SterilisationMethod,
    pub supplier: Option<String>,
    pub received_on: NaiveDate,
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity_received: i32,
}

fn trim_opt(value: &mut Option<String>) {
    if let Some(v) = value {
        *v = v.trim().to_owned();
        if v.is_empty() {
            *value = None;
        }
    }
}

fn required(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.is_empty() {
        errors.push(FieldError::new(field, "is required"));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

fn optional(field: &str, value: &Option<String>, max: usize, errors: &mut Vec<FieldError>) {
    if value.as_ref().is_some_and(|v| v.chars().count() > max) {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

/// A GTIN of 8, 12, 13 or 14 digits with a correct check digit, padded to 14 digits.
pub fn normalise_gtin(raw: &str) -> Result<String, &'static str> {
    let digits: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if !matches!(digits.len(), 8 | 12 | 13 | 14) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("must be a GTIN of 8, 12, 13 or 14 digits");
    }
    let padded = format!("{digits:0>14}");
    let check = gtin_check_digit(&padded[..13]).ok_or("must be digits")?;
    if padded[13..].parse::<u32>().ok() != Some(check) {
        return Err("has a wrong check digit");
    }
    Ok(padded)
}

impl LotInput {
    pub fn normalise(&mut self) {
        self.manufacturer = self.manufacturer.trim().to_owned();
        self.product_name = self.product_name.trim().to_owned();
        self.lot_number = self.lot_number.trim().to_owned();
        trim_opt(&mut self.product_code);
        trim_opt(&mut self.gtin);
        trim_opt(&mut self.supplier);
        if let Some(Ok(gtin)) = self.gtin.as_deref().map(normalise_gtin) {
            self.gtin = Some(gtin);
        }
    }

    pub fn validate(&self, today: NaiveDate) -> Vec<FieldError> {
        let mut errors = Vec::new();
        required("manufacturer", &self.manufacturer, 200, &mut errors);
        required("product_name", &self.product_name, 200, &mut errors);
        required("lot_number", &self.lot_number, 100, &mut errors);
        optional("product_code", &self.product_code, 100, &mut errors);
        optional("supplier", &self.supplier, 200, &mut errors);
        if let Some(Err(reason)) = self.gtin.as_deref().map(normalise_gtin) {
            errors.push(FieldError::new("gtin", reason));
        }
        if self.expiry_date < self.received_on {
            errors.push(FieldError::new(
                "expiry_date",
                "is before the date the lot was received",
            ));
        }
        if self.received_on > today {
            errors.push(FieldError::new("received_on", "must not be in the future"));
        }
        if !(1..=1_000_000).contains(&self.quantity_received) {
            errors.push(FieldError::new(
                "quantity_received",
                "must be between 1 and 1000000",
            ));
        }
        // Cartridges break the skin: they must come sterile (single-use sterile needles: NEHA Body Art Model Code).
        if self.kind == LotKind::NeedleCartridge
            && self.sterilisation_method == SterilisationMethod::NotSterile
        {
            errors.push(FieldError::new(
                "sterilisation_method",
                "needle cartridges must be supplied sterile",
            ));
        }
        errors
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LotStatus {
    Usable,
    /// Past its expiry date: must not be used on a client.
    Expired,
    /// Recalled by the manufacturer or a regulator: must not be used on a client.
    Recalled,
    /// Its stock was taken off the shelf (returned or destroyed): there is none left to use.
    Withdrawn,
}

/// Whether a lot may be used on `on`: a recall always wins; a lot is usable through its expiry
/// date and expired from the day after.
pub fn lot_status(expiry_date: NaiveDate, recalled: bool, on: NaiveDate) -> LotStatus {
    if recalled {
        LotStatus::Recalled
    } else if on > expiry_date {
        LotStatus::Expired
    } else {
        LotStatus::Usable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn lot() -> LotInput {
        LotInput {
            kind: LotKind::NeedleCartridge,
            manufacturer: "Cheyenne".into(),
            product_name: "Craft Cartridges".into(),
            product_code: Some("1RL 0.30 mm".into()),
            gtin: Some("4012345000009".into()),
            lot_number: "L2311A".into(),
            expiry_date: day(2029, 10, 31),
            sterilisation_method: SterilisationMethod::EthyleneOxide,
            supplier: None,
            received_on: day(2026, 11, 20),
            quantity_received: 20,
        }
    }

    #[test]
    fn a_lot_validates_and_its_gtin_is_padded() {
        let mut l = lot();
        l.normalise();
        assert_eq!(l.gtin.as_deref(), Some("04012345000009"));
        assert!(l.validate(day(2026, 11, 25)).is_empty());
    }

    #[test]
    fn bad_lots_name_their_fields() {
        let today = day(2026, 11, 25);
        let fields = |l: LotInput| {
            l.validate(today)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields(LotInput {
                expiry_date: day(2026, 11, 19),
                ..lot()
            }),
            ["expiry_date"]
        );
        assert_eq!(
            fields(LotInput {
                lot_number: String::new(),
                ..lot()
            }),
            ["lot_number"]
        );
        assert_eq!(
            fields(LotInput {
                gtin: Some("4012345000008".into()),
                ..lot()
            }),
            ["gtin"]
        );
        assert_eq!(
            fields(LotInput {
                received_on: day(2026, 11, 26),
                expiry_date: day(2027, 1, 1),
                ..lot()
            }),
            ["received_on"]
        );
        assert_eq!(
            fields(LotInput {
                quantity_received: 0,
                ..lot()
            }),
            ["quantity_received"]
        );
        assert_eq!(
            fields(LotInput {
                sterilisation_method: SterilisationMethod::NotSterile,
                ..lot()
            }),
            ["sterilisation_method"]
        );
        assert!(fields(LotInput {
            kind: LotKind::Pigment,
            sterilisation_method: SterilisationMethod::NotSterile,
            ..lot()
        })
        .is_empty());
    }

    #[test]
    fn status_boundaries() {
        let expiry = day(2027, 3, 31);
        assert_eq!(
            lot_status(expiry, false, day(2027, 3, 31)),
            LotStatus::Usable
        );
        assert_eq!(
            lot_status(expiry, false, day(2027, 4, 1)),
            LotStatus::Expired
        );
        assert_eq!(
            lot_status(expiry, true, day(2026, 1, 1)),
            LotStatus::Recalled
        );
    }
}
