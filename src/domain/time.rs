//! Minute-precision UTC instants, the unit permits, blacklists and bookings are valid in.
//!
//! Never reads a clock: callers convert the `now` they were given.

use chrono::{DateTime, TimeZone, Utc};

/// Whole minutes since 1970-01-01T00:00Z. Validity windows are "from inclusive, until exclusive"
/// in these minutes; [`UtcMinute::MAX`] means "no end". Four bytes, so a million permits stay small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtcMinute(pub u32);

impl UtcMinute {
    /// The earliest representable minute (1970-01-01T00:00Z), used as "since always".
    pub const MIN: UtcMinute = UtcMinute(0);
    /// The last representable minute, used as "no end".
    pub const MAX: UtcMinute = UtcMinute(u32::MAX);

    /// The minute containing `t` (seconds are truncated). Instants before 1970 clamp to
    /// [`UtcMinute::MIN`], instants past the year 10000 clamp to [`UtcMinute::MAX`].
    pub fn from_datetime(t: DateTime<Utc>) -> UtcMinute {
        let m = t.timestamp().div_euclid(60);
        UtcMinute(m.clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// The start of this minute as a UTC date-time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_opt(i64::from(self.0) * 60, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whether `self` lies in `[from, until)`.
    pub fn within(self, from: UtcMinute, until: UtcMinute) -> bool {
        from <= self && self < until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_truncates_seconds_and_round_trips_to_its_start() {
        let t = Utc.with_ymd_and_hms(2025, 3, 1, 8, 30, 59).unwrap();
        let m = UtcMinute::from_datetime(t);
        assert_eq!(
            m.to_datetime(),
            Utc.with_ymd_and_hms(2025, 3, 1, 8, 30, 0).unwrap()
        );
        assert!(m.within(m, UtcMinute(m.0 + 1)));
        assert!(!m.within(UtcMinute(m.0 + 1), UtcMinute::MAX));
        assert!(!m.within(UtcMinute::MIN, m));
    }

    #[test]
    fn instants_before_1970_clamp_to_the_first_minute() {
        let t = Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 0).unwrap();
        assert_eq!(UtcMinute::from_datetime(t), UtcMinute::MIN);
    }
}
