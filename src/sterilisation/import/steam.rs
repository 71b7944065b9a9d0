//! Saturated steam (IAPWS-IF97, region 4): the pressure at which steam at a temperature is
//! saturated, and the temperature for a pressure. A steam steriliser's chamber holds saturated
//! steam during the plateau, so its measured temperature and pressure must agree; EN 285 (and
//! EN 13060 for small sterilisers) allows 2 K between the measured temperature and the one
//! calculated from the chamber pressure.

const N: [f64; 10] = [
    1167.0521452767,
    -724213.16703206,
    -17.073846940092,
    12020.82470247,
    -3232555.0322333,
    14.91510861353,
    -4823.2657361591,
    405113.40542057,
    -0.23855557567849,
    650.17534844798,
];

/// Absolute pressure of saturated steam at `celsius`, in kPa; `None` outside 0.01–373.9 °C.
pub fn pressure_kpa(celsius: f64) -> Option<f64> {
    let t = celsius + 273.15;
    if !(273.16..=647.096).contains(&t) {
        return None;
    }
    let theta = t + N[8] / (t - N[9]);
    let a = theta * theta + N[0] * theta + N[1];
    let b = N[2] * theta * theta + N[3] * theta + N[4];
    let c = N[5] * theta * theta + N[6] * theta + N[7];
    let p_mpa = (2.0 * c / (-b + (b * b - 4.0 * a * c).sqrt())).powi(4);
    Some(p_mpa * 1000.0)
}

/// Temperature of saturated steam at an absolute pressure in kPa, in °C; `None` outside
/// 0.611 kPa–22.064 MPa.
pub fn temperature_c(kpa: f64) -> Option<f64> {
    if !(0.611_213..=22_064.0).contains(&kpa) || !kpa.is_finite() {
        return None;
    }
    let beta = (kpa / 1000.0).powf(0.25);
    let e = beta * beta + N[2] * beta + N[5];
    let f = N[0] * beta * beta + N[3] * beta + N[6];
    let g = N[1] * beta * beta + N[4] * beta + N[7];
    let d = 2.0 * g / (-f - (f * f - 4.0 * e * g).sqrt());
    let t = (N[9] + d - ((N[9] + d).powi(2) - 4.0 * (N[8] + N[9] * d)).sqrt()) / 2.0;
    Some(t - 273.15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_releases_check_values() {
        // IAPWS-IF97 table 35: 300 K → 3.53658941 kPa, 500 K → 2.63889776 MPa.
        let p300 = pressure_kpa(300.0 - 273.15).unwrap();
        assert!((p300 - 3.536_589_41).abs() < 1e-6, "{p300}");
        let p500 = pressure_kpa(500.0 - 273.15).unwrap();
        assert!((p500 - 2_638.897_76).abs() < 1e-3, "{p500}");
        // Table 36: 0.1 MPa → 372.755919 K.
        let t = temperature_c(100.0).unwrap() + 273.15;
        assert!((t - 372.755_919).abs() < 1e-5, "{t}");
    }

    #[test]
    fn sterilising_temperatures_match_the_steam_table() {
        for (c, kpa) in [(121.0, 205.0), (134.0, 304.2), (137.0, 331.9)] {
            let p = pressure_kpa(c).unwrap();
            assert!((p - kpa).abs() < 0.5, "{c} °C: {p}");
            assert!((temperature_c(p).unwrap() - c).abs() < 1e-6);
        }
    }
}
