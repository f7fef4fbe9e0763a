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
    }
}
