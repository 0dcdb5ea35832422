//! The facility's clock. Care follows local time (clinics open at 08:00,
//! the emergency department is busiest in the afternoon, the ward's bloods
//! are drawn before dawn and its rounds are in the late morning), while
//! every file carries UTC and a batch is a UTC day. This module turns the
//! one into the other, across daylight-saving changes.

use chrono::{Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Where the data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facility {
    /// IANA time zone name, e.g. `America/New_York`.
    pub time_zone: Tz,
}

impl Facility {
    /// The UTC instant at which the local wall clock reads `minute` (minutes
    /// after local midnight) on local `date`. A time the clock skips (the
    /// spring-forward hour) is read as the same number of minutes after the
    /// day's start; a time it shows twice (the autumn hour) as the first.
    pub fn utc(&self, date: NaiveDate, minute: u32) -> NaiveDateTime {
        let local = date.and_time(NaiveTime::MIN) + chrono::Duration::minutes(i64::from(minute));
        match self.time_zone.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.naive_utc(),
            LocalResult::None => {
                let midnight = self.day_start(date);
                midnight + chrono::Duration::minutes(i64::from(minute))
            }
        }
    }

    /// The UTC instant of local midnight starting `date` (or the first
    /// instant of the day where midnight itself is skipped).
    pub fn day_start(&self, date: NaiveDate) -> NaiveDateTime {
        let midnight = date.and_time(NaiveTime::MIN);
        // Zones that skip midnight do so by at most an hour or two.
        (0..=180)
            .find_map(|m| {
                let local = midnight + chrono::Duration::minutes(m);
                match self.time_zone.from_local_datetime(&local) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.naive_utc()),
                    LocalResult::None => None,
                }
            })
            .unwrap_or(midnight)
    }

    /// The local date and time at UTC instant `utc`.
    pub fn local(&self, utc: NaiveDateTime) -> NaiveDateTime {
        self.time_zone.from_utc_datetime(&utc).naive_local()
    }

    /// The local hour (0-23) at UTC instant `utc`.
    pub fn local_hour(&self, utc: NaiveDateTime) -> u32 {
        self.local(utc).hour()
    }

    /// Epoch seconds of local `minute` on the `days`-th local day after the
    /// one `epoch_seconds` falls on.
    pub fn days_later_at(&self, epoch_seconds: i64, days: u64, minute: u32) -> i64 {
        let utc = chrono::DateTime::from_timestamp(epoch_seconds, 0)
            .map_or(NaiveDateTime::MIN, |t| t.naive_utc());
        let date = self.local(utc).date();
        let date = date.checked_add_days(Days::new(days)).unwrap_or(date);
        self.utc(date, minute).and_utc().timestamp()
    }
}

impl Default for Facility {
    fn default() -> Facility {
        Facility {
            time_zone: chrono_tz::America::New_York,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn new_york_local_times_map_to_utc_across_both_changes() {
        let f = Facility::default();
        // Standard time: UTC-5; daylight time: UTC-4.
        assert_eq!(
            f.utc(date("2026-03-07"), 8 * 60).to_string(),
            "2026-03-07 13:00:00"
        );
        assert_eq!(
            f.utc(date("2026-03-09"), 8 * 60).to_string(),
            "2026-03-09 12:00:00"
        );
        // 02:30 does not exist on 2026-03-08: read as 150 minutes after midnight.
        assert_eq!(
            f.utc(date("2026-03-08"), 150).to_string(),
            "2026-03-08 07:30:00"
        );
        // 01:30 happens twice on 2026-11-01: the first (daylight) one.
        assert_eq!(
            f.utc(date("2026-11-01"), 90).to_string(),
            "2026-11-01 05:30:00"
        );
        assert_eq!(f.local_hour("2026-11-01T06:30:00".parse().expect("t")), 1);
        assert_eq!(
            f.day_start(date("2026-11-01")).to_string(),
            "2026-11-01 04:00:00"
        );
        let noon = f.utc(date("2026-03-07"), 12 * 60).and_utc().timestamp();
        let next_dawn = f.days_later_at(noon, 1, 5 * 60);
        assert_eq!(
            chrono::DateTime::from_timestamp(next_dawn, 0).map(|t| t.naive_utc().to_string()),
            Some("2026-03-08 09:00:00".into())
        );
    }
}
