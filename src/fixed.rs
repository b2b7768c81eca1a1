//! Numbers with a fixed count of decimals, printed with integer arithmetic.
//! core's float formatting (Grisu and Dragon4 with their tables) costs
//! about 13 KiB of the mips binary, for three lines of logs and status that
//! need a tenth of a second or a millisecond's thousandth at most.

use std::fmt;
use std::time::Duration;

/// `units` / 10^`places`, e.g. `Fixed { units: 15, places: 1 }` is "1.5".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    pub units: i64,
    pub places: u32,
}

impl Fixed {
    /// `d` in seconds (`scale` 1) or milliseconds (`scale` 1000), rounded
    /// to `places` decimals.
    pub fn of_duration(d: Duration, scale: u32, places: u32) -> Fixed {
        let per_unit = 10u128.pow(places) * u128::from(scale);
        let units = (d.as_nanos() * per_unit + 500_000_000) / 1_000_000_000;
        Fixed {
            units: i64::try_from(units).unwrap_or(i64::MAX),
            places,
        }
    }

    /// `value` rounded to `places` decimals (NaN as 0; out of range
    /// saturates).
    pub fn of_f64(value: f64, places: u32) -> Fixed {
        Fixed {
            // `as` saturates and maps NaN to 0.
            units: (value * 10f64.powi(places as i32)).round() as i64,
            places,
        }
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10u64.pow(self.places);
        let sign = if self.units < 0 { "-" } else { "" };
        let magnitude = self.units.unsigned_abs();
        write!(f, "{sign}{}", magnitude / scale)?;
        if self.places > 0 {
            let fraction = magnitude % scale;
            write!(f, ".{fraction:0width$}", width = self.places as usize)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero_and_otherwise_prints_as_float_formatting_does() {
        let s = |d: Duration, scale, places| Fixed::of_duration(d, scale, places).to_string();
        assert_eq!(s(Duration::from_millis(1234), 1, 1), "1.2");
        assert_eq!(s(Duration::from_millis(1250), 1, 1), "1.3");
        assert_eq!(s(Duration::ZERO, 1, 1), "0.0");
        assert_eq!(s(Duration::from_micros(2_345), 1000, 1), "2.3");
        assert_eq!(s(Duration::from_micros(50), 1000, 1), "0.1");
        assert_eq!(Fixed::of_f64(1.5, 3).to_string(), "1.500");
        assert_eq!(Fixed::of_f64(-0.25, 1).to_string(), "-0.3");
        assert_eq!(Fixed::of_f64(f64::NAN, 2).to_string(), "0.00");
        assert_eq!(Fixed::of_f64(12.0, 0).to_string(), "12");
        // No ties here: float formatting rounds those to even.
        for (value, places) in [(1.23456, 3), (0.05, 2), (1e6 + 0.5, 1)] {
            assert_eq!(
                Fixed::of_f64(value, places).to_string(),
                format!("{value:.*}", places as usize),
                "{value}"
            );
        }
    }
}
