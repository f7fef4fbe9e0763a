//! The school's monthly figures for the DSL: sessions and alerts by kind, false alarms, how quickly
//! leaders took ownership and resolved alarms, late check-ins.

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use homeward_shared::FieldError;
use homeward_shared::api::{DurationFigures, MonthlyFigures, NamedCount};
use uuid::Uuid;

use crate::Timestamp;
use crate::clock::to_millis;
use crate::error::ApiError;

/// A calendar month in UTC: its first instant and the first instant of the next.
pub fn month_bounds(month: &str) -> Result<(Timestamp, Timestamp), FieldError> {
    let bad = || FieldError::new("month", format!("the month must be written YYYY-MM, e.g. 2026-03; got `{month}`"));
    let (year, number) = month.split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || number.len() != 2 {
        return Err(bad());
    }
    let year: i32 = year.parse().map_err(|_| bad())?;
    let number: u32 = number.parse().map_err(|_| bad())?;
    let first = NaiveDate::from_ymd_opt(year, number, 1).ok_or_else(bad)?;
    if !(2000..=2200).contains(&year) {
        return Err(FieldError::new("month", "the month must be between 2000-01 and 2200-12"));
    }
    let next = if number == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, number + 1, 1)
    }
    .ok_or_else(bad)?;
    let at = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
    Ok((at(first), at(next)))
}

/// `YYYY-MM` of `at`.
pub fn month_of(at: Timestamp) -> String {
    format!("{:04}-{:02}", at.year(), at.month())
}

/// The nearest-rank percentile of sorted values (`p` in 1..=100).
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn durations(mut seconds: Vec<i64>) -> DurationFigures {
    seconds.sort_unstable();
    DurationFigures {
        count: seconds.len() as i64,
        median_seconds: percentile(&seconds, 50),
        p95_seconds: percentile(&seconds, 95),
    }
}

pub async fn monthly(pool: &sqlx::AnyPool, school_id: Uuid, month: &str) -> Result<MonthlyFigures, ApiError> {
    let (from, to) = month_bounds(month)?;
    let school = school_id.to_string();
    let (from_ms, to_ms) = (to_millis(from), to_millis(to));
    // Sessions count in the month they started.
    let sessions: Vec<(String, i64, i64)> = sqlx::query_as(
        "select kind, count(*), cast(coalesce(sum(late_check_ins), 0) as bigint) from sessions \
         where school_id = $1 and started_at >= $2 and started_at < $3 group by kind order by kind",
    )
    .bind(&school)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(pool)
    .await?;
    // Alerts count in the month they were raised.
    type AlertRow = (String, Option<String>, i64, Option<i64>, Option<i64>);
    let alerts: Vec<AlertRow> = sqlx::query_as(
        "select kind, resolution, raised_at, acknowledged_at, resolved_at from alerts \
         where school_id = $1 and raised_at >= $2 and raised_at < $3",
    )
    .bind(&school)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(pool)
    .await?;

    let mut alerts_by_kind: Vec<NamedCount> = Vec::new();
    let (mut ownership, mut resolve) = (Vec::new(), Vec::new());
    let (mut false_alarms, mut incidents) = (0, 0);
    for (kind, resolution, raised, acknowledged, resolved) in &alerts {
        match alerts_by_kind.iter_mut().find(|c| &c.name == kind) {
            Some(c) => c.count += 1,
            None => alerts_by_kind.push(NamedCount { name: kind.clone(), count: 1 }),
        }
        match resolution.as_deref() {
            Some("false_alarm") => false_alarms += 1,
            Some("incident" | "police_called") => incidents += 1,
            _ => {}
        }
        // Timings are of alarms, which a leader must own; informational alerts only tell people.
        if matches!(kind.as_str(), "missed_deadline" | "panic" | "duress") {
            if let Some(at) = acknowledged {
                ownership.push((at - raised) / 1000);
            }
            if let Some(at) = resolved {
                resolve.push((at - raised) / 1000);
            }
        }
    }
    alerts_by_kind.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(MonthlyFigures {
        month: month_of(from),
        from,
        to,
        sessions_total: sessions.iter().map(|(_, n, _)| n).sum(),
        late_check_ins: sessions.iter().map(|(_, _, late)| late).sum(),
        sessions_by_kind: sessions.into_iter().map(|(name, count, _)| NamedCount { name, count }).collect(),
        alerts_total: alerts.len() as i64,
        alerts_by_kind,
        false_alarms,
        incidents,
        time_to_ownership: durations(ownership),
        time_to_resolve: durations(resolve),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_run_from_the_first_to_the_next_first() {
        let (from, to) = month_bounds("2026-12").expect("a month");
        assert_eq!(from.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        for bad in ["2026-13", "2026-1", "26-01", "2026/01", "", "2026-00", "1999-12"] {
            assert_eq!(month_bounds(bad).unwrap_err().field, "month", "{bad}");
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&values, 50), Some(10));
        assert_eq!(percentile(&values, 95), Some(19));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[3, 9], 50), Some(3));
    }
}
