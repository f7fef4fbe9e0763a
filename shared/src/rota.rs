//! The on-call rota: who responds out of school hours and in the holidays. A weekly pattern of shifts,
//! dated overrides (swaps, bank holidays) and the term dates. In term time, school hours belong to the
//! line managers and the plan's other steps; outside them, and all day in the holidays, the rota names
//! the on-call leader.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Day {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Day {
    fn index(self) -> i64 {
        self as i64
    }

    fn of(weekday: Weekday) -> Self {
        [Day::Monday, Day::Tuesday, Day::Wednesday, Day::Thursday, Day::Friday, Day::Saturday, Day::Sunday]
            [weekday.num_days_from_monday() as usize]
    }
}

/// One weekly shift: from `start` on `day` until `end` (local times, `HH:MM`). An `end` at or before
/// `start` runs past midnight into the next day (Friday 17:00 to 08:00 is the Friday night).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotaShift {
    pub day: Day,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "17:00"))]
    pub start: NaiveTime,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "08:00"))]
    pub end: NaiveTime,
    pub user_id: Uuid,
}

/// A dated exception that wins over the weekly pattern and over school hours for the time it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotaOverride {
    pub date: NaiveDate,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "00:00"))]
    pub start: NaiveTime,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "00:00"))]
    pub end: NaiveTime,
    pub user_id: Uuid,
}

/// A term, first and last day included. Weekdays outside every term are holidays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Term {
    pub name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// The school day on term-time weekdays, when the rota does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchoolHours {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "08:00"))]
    pub start: NaiveTime,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "17:00"))]
    pub end: NaiveTime,
}

impl Default for SchoolHours {
    fn default() -> Self {
        Self { start: hm(8, 0), end: hm(17, 0) }
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

pub const DEFAULT_TIMEZONE: &str = "Europe/London";

fn default_timezone() -> String {
    DEFAULT_TIMEZONE.to_string()
}

/// A school's rota. With no terms listed every weekday counts as a term day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OnCallRota {
    /// The IANA time zone the rota's times are in.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default)]
    pub school_hours: SchoolHours,
    /// The weekly pattern (required, though it may be empty, so that a stray body is never read as
    /// "nobody is ever on call").
    pub weekly: Vec<RotaShift>,
    #[serde(default)]
    pub overrides: Vec<RotaOverride>,
    #[serde(default)]
    pub terms: Vec<Term>,
}

impl Default for OnCallRota {
    fn default() -> Self {
        Self {
            timezone: default_timezone(),
            school_hours: SchoolHours::default(),
            weekly: vec![],
            overrides: vec![],
            terms: vec![],
        }
    }
}

/// Who is on call at a moment, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCall {
    /// A dated override names them.
    Override(Uuid),
    /// The weekly pattern names them.
    Weekly(Uuid),
    /// Term-time school hours: the rota does not apply.
    SchoolHours,
    /// Out of hours, but no shift covers this moment.
    Uncovered,
}

impl OnCall {
    pub fn leader(self) -> Option<Uuid> {
        match self {
            OnCall::Override(id) | OnCall::Weekly(id) => Some(id),
            OnCall::SchoolHours | OnCall::Uncovered => None,
        }
    }

    /// Why nobody is on call, in words for the alert's record.
    pub fn reason(self) -> &'static str {
        match self {
            OnCall::Override(_) | OnCall::Weekly(_) => "someone is on call",
            OnCall::SchoolHours => "it is school hours in term time, when the rota does not apply",
            OnCall::Uncovered => "no shift of the on-call rota covers this time",
        }
    }
}

const MINUTES_PER_WEEK: i64 = 7 * 24 * 60;
pub const MAX_SHIFTS: usize = 200;
pub const MAX_OVERRIDES: usize = 1000;
pub const MAX_TERMS: usize = 100;

fn minutes(t: NaiveTime) -> i64 {
    NaiveDateTime::new(NaiveDate::default(), t).and_utc().timestamp().rem_euclid(86_400) / 60
}

/// A shift's length in minutes: an end at or before the start runs into the next day.
fn length(start: NaiveTime, end: NaiveTime) -> i64 {
    let (s, e) = (minutes(start), minutes(end));
    if e > s { e - s } else { e + 24 * 60 - s }
}

/// Do the half-open spans `[a, a + la)` and `[b, b + lb)` on a circle of `period` minutes overlap?
fn overlaps(a: i64, la: i64, b: i64, lb: i64, period: i64) -> bool {
    let d = (b - a).rem_euclid(period);
    d < la || (period - d) < lb
}

impl OnCallRota {
    /// Check the rota's shape. Time zone names and user ids are checked by the server, which knows them.
    pub fn parse(mut self) -> Result<Self, FieldError> {
        self.timezone = self.timezone.trim().to_string();
        if self.timezone.is_empty() {
            return Err(FieldError::new("timezone", "a time zone is required, e.g. Europe/London"));
        }
        if self.school_hours.start >= self.school_hours.end {
            return Err(FieldError::new("school_hours", "school hours must end after they start on the same day"));
        }
        if self.weekly.len() > MAX_SHIFTS {
            return Err(FieldError::new("weekly", format!("a rota has at most {MAX_SHIFTS} weekly shifts")));
        }
        if self.overrides.len() > MAX_OVERRIDES {
            return Err(FieldError::new("overrides", format!("a rota has at most {MAX_OVERRIDES} overrides")));
        }
        if self.terms.len() > MAX_TERMS {
            return Err(FieldError::new("terms", format!("a rota has at most {MAX_TERMS} terms")));
        }
        let start_of = |s: &RotaShift| s.day.index() * 24 * 60 + minutes(s.start);
        for (i, a) in self.weekly.iter().enumerate() {
            for (j, b) in self.weekly.iter().enumerate().skip(i + 1) {
                if overlaps(start_of(a), length(a.start, a.end), start_of(b), length(b.start, b.end), MINUTES_PER_WEEK)
                {
                    return Err(FieldError::new(
                        "weekly",
                        format!("shift {} overlaps shift {}: only one leader can be on call at a time", j + 1, i + 1),
                    ));
                }
            }
        }
        let origin = NaiveDate::default();
        let start_at = |o: &RotaOverride| (o.date - origin).num_minutes() + minutes(o.start);
        for (i, a) in self.overrides.iter().enumerate() {
            for (j, b) in self.overrides.iter().enumerate().skip(i + 1) {
                let (sa, sb) = (start_at(a), start_at(b));
                let (la, lb) = (length(a.start, a.end), length(b.start, b.end));
                if sa < sb + lb && sb < sa + la {
                    return Err(FieldError::new(
                        "overrides",
                        format!("override {} overlaps override {}", j + 1, i + 1),
                    ));
                }
            }
        }
        for (i, term) in self.terms.iter_mut().enumerate() {
            term.name = term.name.trim().to_string();
            if term.name.is_empty() || term.name.chars().count() > 100 {
                return Err(FieldError::new(
                    "terms",
                    format!("term {}: a name of 1 to 100 characters is needed", i + 1),
                ));
            }
            if term.end < term.start {
                return Err(FieldError::new("terms", format!("term {}: it ends before it starts", i + 1)));
            }
        }
        Ok(self)
    }

    /// Every person the rota names.
    pub fn people(&self) -> Vec<Uuid> {
        let mut people: Vec<Uuid> =
            self.weekly.iter().map(|s| s.user_id).chain(self.overrides.iter().map(|o| o.user_id)).collect();
        people.sort();
        people.dedup();
        people
    }

    fn is_term_day(&self, date: NaiveDate) -> bool {
        let weekday = date.weekday().num_days_from_monday() < 5;
        weekday && (self.terms.is_empty() || self.terms.iter().any(|t| t.start <= date && date <= t.end))
    }

    /// Who is on call at `local`, a wall-clock time in the rota's time zone.
    pub fn on_call_at(&self, local: NaiveDateTime) -> OnCall {
        let date = local.date();
        let origin = NaiveDate::default();
        let at = (date - origin).num_minutes() + minutes(local.time());
        if let Some(o) = self.overrides.iter().find(|o| {
            let start = (o.date - origin).num_minutes() + minutes(o.start);
            start <= at && at < start + length(o.start, o.end)
        }) {
            return OnCall::Override(o.user_id);
        }
        let time = local.time();
        if self.is_term_day(date) && self.school_hours.start <= time && time < self.school_hours.end {
            return OnCall::SchoolHours;
        }
        let week_minute = Day::of(date.weekday()).index() * 24 * 60 + minutes(time);
        self.weekly
            .iter()
            .find(|s| {
                let start = s.day.index() * 24 * 60 + minutes(s.start);
                (week_minute - start).rem_euclid(MINUTES_PER_WEEK) < length(s.start, s.end)
            })
            .map_or(OnCall::Uncovered, |s| OnCall::Weekly(s.user_id))
    }
}

/// How long a shift lasts, for display.
pub fn shift_length(start: NaiveTime, end: NaiveTime) -> Duration {
    Duration::minutes(length(start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(date: &str, time: &str) -> NaiveDateTime {
        NaiveDateTime::new(date.parse().unwrap(), time.parse().unwrap())
    }

    fn shift(day: Day, start: &str, end: &str, user_id: Uuid) -> RotaShift {
        RotaShift { day, start: start.parse().unwrap(), end: end.parse().unwrap(), user_id }
    }

    /// Weeknights and weekends covered by Alice and Bob; spring term 2026 from 5 January to 27 March.
    fn rota(alice: Uuid, bob: Uuid) -> OnCallRota {
        OnCallRota {
            weekly: vec![
                shift(Day::Monday, "00:00", "00:00", alice),
                shift(Day::Tuesday, "00:00", "00:00", alice),
                shift(Day::Wednesday, "00:00", "00:00", alice),
                shift(Day::Thursday, "00:00", "00:00", alice),
                // Friday 00:00 to Monday 00:00 in one shift.
                shift(Day::Friday, "00:00", "00:00", bob),
                shift(Day::Saturday, "00:00", "00:00", bob),
                shift(Day::Sunday, "00:00", "00:00", bob),
            ],
            terms: vec![Term {
                name: "Spring".into(),
                start: "2026-01-05".parse().unwrap(),
                end: "2026-03-27".parse().unwrap(),
            }],
            ..OnCallRota::default()
        }
        .parse()
        .unwrap()
    }

    #[test]
    fn evenings_go_to_the_rota_and_term_time_school_hours_do_not() {
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let rota = rota(alice, bob);
        // Tuesday 10 March 2026, in term.
        assert_eq!(rota.on_call_at(at("2026-03-10", "19:00")), OnCall::Weekly(alice));
        assert_eq!(rota.on_call_at(at("2026-03-10", "10:00")), OnCall::SchoolHours);
        assert_eq!(rota.on_call_at(at("2026-03-10", "07:59")), OnCall::Weekly(alice));
        assert_eq!(rota.on_call_at(at("2026-03-10", "08:00")), OnCall::SchoolHours);
        assert_eq!(rota.on_call_at(at("2026-03-10", "17:00")), OnCall::Weekly(alice));
        // Saturday in term: no school hours.
        assert_eq!(rota.on_call_at(at("2026-03-14", "10:00")), OnCall::Weekly(bob));
    }

    #[test]
    fn in_the_holidays_the_rota_applies_all_day() {
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let rota = rota(alice, bob);
        // Tuesday 7 April 2026: Easter holidays.
        assert_eq!(rota.on_call_at(at("2026-04-07", "10:00")), OnCall::Weekly(alice));
        // With no terms listed every weekday is a term day.
        let no_terms = OnCallRota { terms: vec![], ..rota };
        assert_eq!(no_terms.on_call_at(at("2026-04-07", "10:00")), OnCall::SchoolHours);
    }

    #[test]
    fn overnight_shifts_run_into_the_next_day_and_gaps_are_uncovered() {
        let carol = Uuid::new_v4();
        let rota = OnCallRota { weekly: vec![shift(Day::Sunday, "18:00", "07:00", carol)], ..OnCallRota::default() }
            .parse()
            .unwrap();
        // Sunday 8 March 2026 evening, and the small hours of Monday: the shift wraps past the week's end.
        assert_eq!(rota.on_call_at(at("2026-03-08", "23:30")), OnCall::Weekly(carol));
        assert_eq!(rota.on_call_at(at("2026-03-09", "06:59")), OnCall::Weekly(carol));
        assert_eq!(rota.on_call_at(at("2026-03-09", "07:00")), OnCall::Uncovered);
        assert_eq!(rota.on_call_at(at("2026-03-08", "17:59")), OnCall::Uncovered);
        assert_eq!(OnCall::Uncovered.leader(), None);
    }

    #[test]
    fn overrides_win_even_in_school_hours() {
        let (alice, bob, dave) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut rota = rota(alice, bob);
        rota.overrides = vec![RotaOverride {
            date: "2026-03-10".parse().unwrap(),
            start: "09:00".parse().unwrap(),
            end: "02:00".parse().unwrap(),
            user_id: dave,
        }];
        let rota = rota.parse().unwrap();
        assert_eq!(rota.on_call_at(at("2026-03-10", "08:59")), OnCall::SchoolHours);
        assert_eq!(rota.on_call_at(at("2026-03-10", "10:00")), OnCall::Override(dave));
        assert_eq!(rota.on_call_at(at("2026-03-11", "01:59")), OnCall::Override(dave));
        assert_eq!(rota.on_call_at(at("2026-03-11", "02:00")), OnCall::Weekly(alice));
        assert_eq!(rota.people().len(), 3);
    }

    #[test]
    fn refuses_ambiguous_or_malformed_rotas() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let overlapping = OnCallRota {
            weekly: vec![shift(Day::Monday, "17:00", "09:00", a), shift(Day::Tuesday, "08:00", "12:00", b)],
            ..OnCallRota::default()
        };
        let err = overlapping.parse().unwrap_err();
        assert_eq!(err.field, "weekly");
        assert!(err.message.contains("shift 2 overlaps shift 1"), "{err}");
        // Sunday night into Monday morning overlaps a Monday shift across the week's end.
        let wrapping = OnCallRota {
            weekly: vec![shift(Day::Monday, "06:00", "09:00", a), shift(Day::Sunday, "22:00", "07:00", b)],
            ..OnCallRota::default()
        };
        assert_eq!(wrapping.parse().unwrap_err().field, "weekly");
        let adjacent = OnCallRota {
            weekly: vec![shift(Day::Monday, "17:00", "00:00", a), shift(Day::Tuesday, "00:00", "08:00", b)],
            ..OnCallRota::default()
        };
        assert!(adjacent.parse().is_ok(), "shifts that meet do not overlap");
        let backwards_term = OnCallRota {
            terms: vec![Term {
                name: "Summer".into(),
                start: "2026-07-20".parse().unwrap(),
                end: "2026-04-13".parse().unwrap(),
            }],
            ..OnCallRota::default()
        };
        let err = backwards_term.parse().unwrap_err();
        assert_eq!((err.field, err.message.contains("term 1")), ("terms", true), "{err}");
        let hours =
            OnCallRota { school_hours: SchoolHours { start: hm(17, 0), end: hm(8, 0) }, ..OnCallRota::default() };
        assert_eq!(hours.parse().unwrap_err().field, "school_hours");
        let no_zone = OnCallRota { timezone: " ".into(), ..OnCallRota::default() };
        assert_eq!(no_zone.parse().unwrap_err().field, "timezone");
        let clash = OnCallRota {
            overrides: vec![
                RotaOverride { date: "2026-12-24".parse().unwrap(), start: hm(0, 0), end: hm(0, 0), user_id: a },
                RotaOverride { date: "2026-12-24".parse().unwrap(), start: hm(20, 0), end: hm(22, 0), user_id: b },
            ],
            ..OnCallRota::default()
        };
        assert_eq!(clash.parse().unwrap_err().field, "overrides");
    }

    #[test]
    fn json_uses_plain_times_and_day_names() {
        let rota: OnCallRota = serde_json::from_str(
            r#"{"weekly":[{"day":"friday","start":"17:00","end":"08:00","user_id":"00000000-0000-0000-0000-000000000001"}]}"#,
        )
        .unwrap();
        assert!(serde_json::from_str::<OnCallRota>("[]").is_err(), "an array is not an empty rota");
        assert!(serde_json::from_str::<OnCallRota>("{}").is_err(), "the weekly pattern must be given");
        assert_eq!(rota.timezone, "Europe/London");
        assert_eq!(rota.school_hours, SchoolHours::default());
        assert_eq!(shift_length(rota.weekly[0].start, rota.weekly[0].end), Duration::hours(15));
    }

    const DAYS: [Day; 7] =
        [Day::Monday, Day::Tuesday, Day::Wednesday, Day::Thursday, Day::Friday, Day::Saturday, Day::Sunday];

    /// Any wall-clock time, leap seconds (which chrono parses from `23:59:60`) included.
    fn any_time() -> impl Strategy<Value = NaiveTime> {
        prop_oneof![
            8 => (0u32..24, 0u32..60).prop_map(|(h, m)| hm(h, m)),
            1 => (0u32..86_400).prop_map(|s| NaiveTime::from_num_seconds_from_midnight_opt(s, 0).unwrap_or_default()),
            1 => Just(NaiveTime::from_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap_or_default()),
        ]
    }

    /// Any date chrono can hold, mostly near now.
    fn any_date() -> impl Strategy<Value = NaiveDate> {
        prop_oneof![
            4 => 738_000i32..741_000,
            1 => NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce(),
        ]
        .prop_map(|n| NaiveDate::from_num_days_from_ce_opt(n).unwrap_or_default())
    }

    fn person() -> impl Strategy<Value = Uuid> {
        (0u128..4).prop_map(Uuid::from_u128)
    }

    fn any_rota() -> impl Strategy<Value = OnCallRota> {
        let shift = (proptest::sample::select(DAYS.to_vec()), any_time(), any_time(), person())
            .prop_map(|(day, start, end, user_id)| RotaShift { day, start, end, user_id });
        let over = (any_date(), any_time(), any_time(), person())
            .prop_map(|(date, start, end, user_id)| RotaOverride { date, start, end, user_id });
        let term = ("\\PC{0,12}", any_date(), any_date()).prop_map(|(name, start, end)| Term { name, start, end });
        (
            prop_oneof!["Europe/London", " ", "\\PC{0,20}"],
            (any_time(), any_time()),
            proptest::collection::vec(shift, 0..6),
            proptest::collection::vec(over, 0..4),
            proptest::collection::vec(term, 0..3),
        )
            .prop_map(|(timezone, (start, end), weekly, overrides, terms)| OnCallRota {
                timezone,
                school_hours: SchoolHours { start, end },
                weekly,
                overrides,
                terms,
            })
    }

    proptest! {
        /// Any rota is accepted or refused naming one of its fields; an accepted one parses again to
        /// itself, survives JSON, and answers "who is on call" at any moment with someone it names.
        #[test]
        fn any_rota_parses_or_names_its_field(rota in any_rota(), date in any_date(), time in any_time()) {
            match rota.clone().parse() {
                Ok(parsed) => {
                    prop_assert_eq!(parsed.clone().parse().unwrap(), parsed.clone());
                    let json = serde_json::to_string(&parsed).unwrap();
                    prop_assert_eq!(serde_json::from_str::<OnCallRota>(&json).unwrap().parse().unwrap(), parsed.clone());
                    if let Some(leader) = parsed.on_call_at(NaiveDateTime::new(date, time)).leader() {
                        prop_assert!(parsed.people().contains(&leader));
                    }
                }
                Err(e) => prop_assert!(
                    ["timezone", "school_hours", "weekly", "overrides", "terms"].contains(&e.field),
                    "{}", e
                ),
            }
        }

        /// One shift a day, each inside its own day, never overlap: such a rota is always accepted, and
        /// the same shift given twice always overlaps itself.
        #[test]
        fn shifts_on_separate_days_are_accepted_and_a_repeated_shift_is_refused(
            hours in proptest::collection::vec((0u32..23, 1u32..24, person()), 1..8),
        ) {
            let weekly: Vec<RotaShift> = DAYS
                .iter()
                .zip(&hours)
                .map(|(day, &(a, b, user_id))| {
                    let (start, end) = (a.min(b), a.max(b).max(a.min(b) + 1));
                    RotaShift { day: *day, start: hm(start, 0), end: hm(end, 0), user_id }
                })
                .collect();
            let rota = OnCallRota { weekly: weekly.clone(), ..OnCallRota::default() };
            prop_assert!(rota.parse().is_ok());
            let mut twice = weekly.clone();
            twice.push(weekly[0].clone());
            let err = OnCallRota { weekly: twice, ..OnCallRota::default() }.parse().unwrap_err();
            prop_assert_eq!(err.field, "weekly");
        }
    }
}
