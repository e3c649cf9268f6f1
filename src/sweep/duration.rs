//! Drift times: seconds, or a number with a unit (`20s`, `5min`, `1h`, `1d`, `1w`, `30d`, `1y`, `10y`).
//! A year is 365 days, as in AIHWKIT's drift experiments.

const UNITS: &[(&str, f64)] = &[("s", 1.0), ("min", 60.0), ("h", 3600.0), ("d", 86_400.0), ("w", 604_800.0), ("y", 31_536_000.0)];

/// Parses a drift time written as text. Errors say what is accepted.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')).unwrap_or(t.len());
    // `1e3` is a number, but `1d` must not be read as a float with a dangling exponent.
    let (num, unit) = t.split_at(split);
    let (num, unit) = if unit.is_empty() && num.ends_with(['e', 'E']) { (&num[..num.len() - 1], &t[num.len() - 1..]) } else { (num, unit) };
    let unit = unit.trim();
    let value: f64 = num.parse().map_err(|_| format!("{text:?} is not a drift time"))?;
    let scale = if unit.is_empty() {
        1.0
    } else {
        UNITS.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s).ok_or_else(|| format!("unknown time unit `{unit}` in {text:?}"))?
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("a drift time must be a finite number of seconds >= 0, not {text:?}"));
    }
    Ok(seconds)
}

/// The shortest exact spelling of a drift time (`0s`, `1h`, `30d`, `10y`, `90s`).
pub fn format_duration(seconds: f64) -> String {
    if seconds == 0.0 {
        return "0s".into();
    }
    for (unit, scale) in UNITS.iter().rev() {
        let n = seconds / scale;
        if n >= 1.0 && n.fract() == 0.0 {
            return format!("{n}{unit}");
        }
    }
    format!("{seconds}s")
}

/// The help line for a drift value that does not parse.
pub const DRIFT_HELP: &str =
    "write seconds (3600) or a quoted time with a unit: \"20s\" \"5min\" \"1h\" \"1d\" \"1w\" \"30d\" \"1y\" \"10y\"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("0").unwrap(), 0.0);
        assert_eq!(parse_duration("20s").unwrap(), 20.0);
        assert_eq!(parse_duration("5min").unwrap(), 300.0);
        assert_eq!(parse_duration("1h").unwrap(), 3600.0);
        assert_eq!(parse_duration("1d").unwrap(), 86_400.0);
        assert_eq!(parse_duration("1w").unwrap(), 604_800.0);
        assert_eq!(parse_duration("30d").unwrap(), 2_592_000.0);
        assert_eq!(parse_duration("1y").unwrap(), 31_536_000.0);
        assert_eq!(parse_duration("10y").unwrap(), 315_360_000.0);
        assert_eq!(parse_duration("1.5h").unwrap(), 5400.0);
        assert_eq!(parse_duration("1e3").unwrap(), 1000.0);
    }

    #[test]
    fn rejects() {
        assert!(parse_duration("1 fortnight").is_err());
        assert!(parse_duration("-1h").unwrap_err().contains(">= 0"));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1m").unwrap_err().contains("unknown time unit"));
    }

    #[test]
    fn canonical_spelling() {
        for s in ["0s", "20s", "5min", "1h", "1d", "1w", "30d", "1y", "10y", "90s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
        assert_eq!(format_duration(7200.0), "2h");
    }
}
