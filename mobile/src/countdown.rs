//! The visit countdown: time to the next deadline, worked out on the phone from the last deadline it
//! knows, so it keeps running with no signal. The server owns the deadline; this only shows it.

use chrono::Duration;
use homeward_shared::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Countdown {
    /// The visit has no deadline (not started, or ended).
    NoDeadline,
    Remaining(Duration),
    /// The deadline has passed by this much.
    Overdue(Duration),
}

impl Countdown {
    pub fn to(deadline: Option<Timestamp>, now: Timestamp) -> Self {
        match deadline {
            None => Countdown::NoDeadline,
            Some(deadline) if deadline > now => Countdown::Remaining(deadline - now),
            Some(deadline) => Countdown::Overdue(now - deadline),
        }
    }

    pub fn is_overdue(self) -> bool {
        matches!(self, Countdown::Overdue(_))
    }

    /// What the big clock shows: `mm:ss`, or `h:mm:ss` from an hour up; past the deadline, `OVERDUE +mm:ss`.
    pub fn text(self) -> String {
        match self {
            Countdown::NoDeadline => "--:--".into(),
            // Round up, so the clock reads 00:00 only at the deadline itself.
            Countdown::Remaining(left) => clock(seconds_up(left)),
            Countdown::Overdue(past) => format!("OVERDUE +{}", clock(past.num_seconds())),
        }
    }
}

fn seconds_up(duration: Duration) -> i64 {
    let millis = duration.num_milliseconds();
    millis.div_euclid(1000) + i64::from(millis.rem_euclid(1000) > 0)
}

/// `mm:ss` under an hour, `h:mm:ss` from an hour up.
pub fn clock(total_seconds: i64) -> String {
    let total = total_seconds.max(0);
    let (hours, minutes, seconds) = (total / 3600, (total % 3600) / 60, total % 60);
    if hours > 0 { format!("{hours}:{minutes:02}:{seconds:02}") } else { format!("{minutes:02}:{seconds:02}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(seconds: i64) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    #[test]
    fn formats_minutes_and_hours() {
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(59), "00:59");
        assert_eq!(clock(61), "01:01");
        assert_eq!(clock(3599), "59:59");
        assert_eq!(clock(3600), "1:00:00");
        assert_eq!(clock(12 * 3600 + 5), "12:00:05");
        assert_eq!(clock(-5), "00:00");
    }

    #[test]
    fn counts_down_to_the_deadline_and_then_shows_overdue() {
        let deadline = Some(t(15 * 60));
        assert_eq!(Countdown::to(deadline, t(0)).text(), "15:00");
        assert_eq!(Countdown::to(deadline, t(0) + Duration::milliseconds(1)).text(), "15:00");
        assert_eq!(Countdown::to(deadline, t(60)).text(), "14:00");
        assert!(!Countdown::to(deadline, t(15 * 60 - 1)).is_overdue());
        let past = Countdown::to(deadline, t(15 * 60 + 75));
        assert!(past.is_overdue());
        assert_eq!(past.text(), "OVERDUE +01:15");
        assert_eq!(Countdown::to(None, t(0)).text(), "--:--");
    }

    #[test]
    fn keeps_ticking_offline_from_the_last_known_deadline() {
        // Nothing but the clock changes while offline: each second the countdown falls by one.
        let deadline = Some(t(2 * 3600));
        let shown: Vec<String> = (0..3).map(|s| Countdown::to(deadline, t(s)).text()).collect();
        assert_eq!(shown, ["2:00:00", "1:59:59", "1:59:58"]);
    }
}
