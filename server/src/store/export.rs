//! Sessions and their outcomes as CSV, for the school's MIS and safeguarding records.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};
use homeward_shared::FieldError;
use homeward_shared::session::Outcome;
use uuid::Uuid;

use crate::Timestamp;
use crate::clock::{from_millis, to_millis};
use crate::error::ApiError;

/// The longest range one export covers.
pub const MOST_DAYS: i64 = 366;

pub const HEADER: [&str; 22] = [
    "session_id",
    "worker",
    "worker_email",
    "kind",
    "sub_kind",
    "pupil_reference",
    "address",
    "planned_start",
    "started_at",
    "ended_at",
    "status",
    "risk_level",
    "approval",
    "late_check_ins",
    "child_seen",
    "responsible_adult_present",
    "entered_premises",
    "concern",
    "outcome_notes",
    "alerts",
    "alert_resolutions",
    "reviewed_action",
];

/// `from` and `to` (inclusive dates, UTC) as the instants that bound them.
pub fn range(from: Option<&str>, to: Option<&str>) -> Result<(Timestamp, Timestamp), FieldError> {
    let date = |field: &'static str, raw: Option<&str>| -> Result<NaiveDate, FieldError> {
        let raw = raw.ok_or_else(|| FieldError::new(field, format!("`{field}` is required, as YYYY-MM-DD")))?;
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| FieldError::new(field, format!("`{field}` must be a date written YYYY-MM-DD; got `{raw}`")))
    };
    let (first, last) = (date("from", from)?, date("to", to)?);
    if last < first {
        return Err(FieldError::new("to", "`to` must not be before `from`"));
    }
    if (last - first).num_days() >= MOST_DAYS {
        return Err(FieldError::new("to", format!("one export covers at most {MOST_DAYS} days")));
    }
    let start = Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).unwrap_or_default());
    let end = Utc.from_utc_datetime(&last.and_hms_opt(0, 0, 0).unwrap_or_default()) + chrono::Duration::days(1);
    Ok((start, end))
}

/// A cell a spreadsheet would run as a formula starts with `'` instead.
fn cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() }
}

fn time(ms: Option<i64>) -> String {
    ms.map(|m| from_millis(m).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default()
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

type SessionRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    String,
    String,
    String,
    i64,
    Option<String>,
);

/// Every session of the school planned to start in `[from, to)`, oldest first, as CSV text. A duress
/// alarm is named: only the DSL and admins export.
pub async fn sessions_csv(
    pool: &sqlx::AnyPool,
    school_id: Uuid,
    from: Timestamp,
    to: Timestamp,
) -> Result<(String, usize), ApiError> {
    let school = school_id.to_string();
    let rows: Vec<SessionRow> = sqlx::query_as(
        "select s.session_id, u.name, u.email, s.kind, s.sub_kind, s.pupil_reference, s.address, s.planned_start, \
         s.started_at, s.ended_at, s.status, s.risk_level, s.approval_status, s.late_check_ins, s.outcome \
         from sessions s join users u on u.user_id = s.worker_id \
         where s.school_id = $1 and s.planned_start >= $2 and s.planned_start < $3 \
         order by s.planned_start, s.session_id",
    )
    .bind(&school)
    .bind(to_millis(from))
    .bind(to_millis(to))
    .fetch_all(pool)
    .await?;
    let alert_rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select a.session_id, a.kind, a.resolution from alerts a join sessions s on s.session_id = a.session_id \
         where a.school_id = $1 and s.planned_start >= $2 and s.planned_start < $3 order by a.raised_at",
    )
    .bind(&school)
    .bind(to_millis(from))
    .bind(to_millis(to))
    .fetch_all(pool)
    .await?;
    let mut alerts: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for (session, kind, resolution) in alert_rows {
        let entry = alerts.entry(session).or_default();
        entry.0.push(kind);
        if let Some(r) = resolution {
            entry.1.push(r);
        }
    }
    let reviews: BTreeMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "select subject_id, action_taken from reviews where school_id = $1 and subject_kind = 'concern'",
    )
    .bind(&school)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();

    let mut writer = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::Unexpected(anyhow::Error::new(e));
    writer.write_record(HEADER).map_err(fail)?;
    let count = rows.len();
    for row in rows {
        let (
            id,
            worker,
            email,
            kind,
            sub_kind,
            pupil,
            address,
            planned,
            started,
            ended,
            status,
            risk,
            approval,
            late,
            outcome,
        ) = row;
        let outcome: Option<Outcome> = outcome.and_then(|o| serde_json::from_str(&o).ok());
        let (kinds, resolutions) = alerts.remove(&id).unwrap_or_default();
        let concern = outcome.as_ref().map(|o| {
            serde_json::to_value(o.concern).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
        });
        let record = [
            id.clone(),
            worker,
            email,
            kind,
            sub_kind.unwrap_or_default(),
            pupil.unwrap_or_default(),
            address,
            time(Some(planned)),
            time(started),
            time(ended),
            status,
            risk,
            approval,
            late.to_string(),
            outcome.as_ref().map(|o| yes_no(o.child_seen).to_string()).unwrap_or_default(),
            outcome.as_ref().map(|o| yes_no(o.responsible_adult_present).to_string()).unwrap_or_default(),
            outcome.as_ref().map(|o| yes_no(o.entered_premises).to_string()).unwrap_or_default(),
            concern.unwrap_or_default(),
            outcome.map(|o| o.notes).unwrap_or_default(),
            kinds.join(";"),
            resolutions.join(";"),
            reviews.get(&id).cloned().unwrap_or_default(),
        ];
        writer.write_record(record.iter().map(|v| cell(v))).map_err(fail)?;
    }
    let bytes = writer.into_inner().map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| ApiError::Unexpected(e.into()))?;
    Ok((text, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_dates_and_bounded() {
        let (from, to) = range(Some("2026-11-01"), Some("2026-11-30")).expect("a range");
        assert_eq!(from.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(range(None, Some("2026-11-30")).unwrap_err().field, "from");
        assert_eq!(range(Some("2026-11-01"), Some("30/11/2026")).unwrap_err().field, "to");
        assert_eq!(range(Some("2026-11-02"), Some("2026-11-01")).unwrap_err().field, "to");
        assert_eq!(range(Some("2025-01-01"), Some("2026-11-01")).unwrap_err().field, "to");
    }

    #[test]
    fn formulas_are_defused() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("Flat 2"), "Flat 2");
    }
}
