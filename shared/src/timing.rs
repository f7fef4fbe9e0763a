use chrono::Duration;

use crate::FieldError;

/// How long a visit is expected to last: 5 minutes to 12 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VisitDuration(u32);

impl VisitDuration {
    pub const MIN_MINUTES: i64 = 5;
    pub const MAX_MINUTES: i64 = 12 * 60;

    pub fn parse(minutes: i64) -> Result<Self, FieldError> {
        if !(Self::MIN_MINUTES..=Self::MAX_MINUTES).contains(&minutes) {
            return Err(FieldError::new(
                "expected_duration_minutes",
                format!("a visit lasts between 5 minutes and 12 hours (720 minutes), got {minutes}"),
            ));
        }
        Ok(Self(minutes as u32))
    }

    pub fn minutes(self) -> i64 {
        i64::from(self.0)
    }

    pub fn duration(self) -> Duration {
        Duration::minutes(self.minutes())
    }
}

/// How often the worker must check in while a session runs: 5 minutes to 4 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CheckInInterval(u32);

impl CheckInInterval {
    pub const MIN_MINUTES: i64 = 5;
    pub const MAX_MINUTES: i64 = 4 * 60;

    pub fn parse(minutes: i64) -> Result<Self, FieldError> {
        if !(Self::MIN_MINUTES..=Self::MAX_MINUTES).contains(&minutes) {
            return Err(FieldError::new(
                "check_in_interval_minutes",
                format!("check-ins are every 5 minutes to 4 hours (240 minutes), got {minutes}"),
            ));
        }
        Ok(Self(minutes as u32))
    }

    pub fn minutes(self) -> i64 {
        i64::from(self.0)
    }

    pub fn duration(self) -> Duration {
        Duration::minutes(self.minutes())
    }
}

/// How much time one "extend" adds: 1 to 120 minutes (the phone offers 15, 30 and 60).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExtendMinutes(u32);

impl ExtendMinutes {
    pub fn parse(minutes: i64) -> Result<Self, FieldError> {
        if !(1..=120).contains(&minutes) {
            return Err(FieldError::new(
                "minutes",
                format!("a visit is extended by 1 to 120 minutes at a time, got {minutes}"),
            ));
        }
        Ok(Self(minutes as u32))
    }

    pub fn minutes(self) -> i64 {
        i64::from(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds_are_inclusive() {
        assert!(VisitDuration::parse(4).is_err());
        assert!(VisitDuration::parse(5).is_ok());
        assert!(VisitDuration::parse(720).is_ok());
        assert!(VisitDuration::parse(721).is_err());
        assert!(CheckInInterval::parse(4).is_err());
        assert!(CheckInInterval::parse(240).is_ok());
        assert!(ExtendMinutes::parse(0).is_err());
        assert!(ExtendMinutes::parse(60).is_ok());
    }

    proptest! {
        #[test]
        fn visit_duration_accepts_exactly_its_range(m in any::<i64>()) {
            prop_assert_eq!(VisitDuration::parse(m).is_ok(), (5..=720).contains(&m));
        }

        // Near the bounds as well as anywhere in i64: the interesting values are few.
        #[test]
        fn visit_duration_round_trips_and_names_its_field(m in prop_oneof![any::<i64>(), -10i64..800]) {
            match VisitDuration::parse(m) {
                Ok(d) => {
                    prop_assert_eq!(d.minutes(), m);
                    prop_assert_eq!(d.duration().num_minutes(), m);
                    prop_assert_eq!(VisitDuration::parse(d.minutes()).unwrap(), d);
                }
                Err(e) => {
                    prop_assert!(!(5..=720).contains(&m));
                    prop_assert_eq!(e.field, "expected_duration_minutes");
                }
            }
        }

        #[test]
        fn check_in_interval_round_trips_and_names_its_field(m in prop_oneof![any::<i64>(), -10i64..300]) {
            match CheckInInterval::parse(m) {
                Ok(i) => {
                    prop_assert!((5..=240).contains(&m));
                    prop_assert_eq!(i.minutes(), m);
                    prop_assert_eq!(i.duration().num_minutes(), m);
                    prop_assert_eq!(CheckInInterval::parse(i.minutes()).unwrap(), i);
                }
                Err(e) => {
                    prop_assert!(!(5..=240).contains(&m));
                    prop_assert_eq!(e.field, "check_in_interval_minutes");
                }
            }
        }

        #[test]
        fn extend_minutes_round_trip_and_name_their_field(m in prop_oneof![any::<i64>(), -10i64..200]) {
            match ExtendMinutes::parse(m) {
                Ok(x) => {
                    prop_assert!((1..=120).contains(&m));
                    prop_assert_eq!(x.minutes(), m);
                    prop_assert_eq!(ExtendMinutes::parse(x.minutes()).unwrap(), x);
                }
                Err(e) => {
                    prop_assert!(!(1..=120).contains(&m));
                    prop_assert_eq!(e.field, "minutes");
                }
            }
        }
    }
}
