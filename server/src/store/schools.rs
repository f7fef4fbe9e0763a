//! Schools (the tenants) and their rules.

use homeward_shared::api::ApprovalRules;
use homeward_shared::{EscalationPlan, RiskLevel};
use uuid::Uuid;

use crate::Timestamp;
use crate::db::WriteTx;
use crate::error::ApiError;
use crate::store::{audit, plans};

/// Create a school with the default escalation plan and default rules.
#[tracing::instrument(skip_all)]
pub async fn create(tx: &mut WriteTx, name: &str, now: Timestamp) -> Result<Uuid, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(homeward_shared::FieldError::new("name", "a school needs a name of 1 to 200 characters").into());
    }
    let id = Uuid::new_v4();
    sqlx::query("insert into schools (school_id, name, created_at) values ($1, $2, $3)")
        .bind(id.to_string())
        .bind(name)
        .bind(now.timestamp_millis())
        .execute(tx.conn())
        .await?;
    audit::append(
        tx,
        audit::Action {
            school_id: id,
            actor_id: None,
            action: "school.created",
            subject: format!("school:{id}"),
            detail: name.to_string(),
            at: now,
        },
    )
    .await?;
    plans::insert(tx, id, None, &EscalationPlan::school_default(), true, now).await?;
    Ok(id)
}

pub async fn rules<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    school_id: Uuid,
) -> Result<ApprovalRules, ApiError> {
    let row: Option<(i64, Option<String>, i64)> = sqlx::query_as(
        "select safe_and_well_needs_approval, approval_from_risk, high_risk_needs_companion from schools where school_id = $1",
    )
    .bind(school_id.to_string())
    .fetch_optional(exec)
    .await?;
    let (saw, risk, companion) = row.ok_or(ApiError::NotFound("school"))?;
    Ok(ApprovalRules {
        safe_and_well_needs_approval: saw != 0,
        approval_from_risk: risk.and_then(|r| RiskLevel::parse(&r).ok()),
        high_risk_needs_companion: companion != 0,
    })
}

pub async fn set_rules(tx: &mut WriteTx, school_id: Uuid, rules: &ApprovalRules) -> Result<(), ApiError> {
    sqlx::query(
        "update schools set safe_and_well_needs_approval = $1, approval_from_risk = $2, high_risk_needs_companion = $3 \
         where school_id = $4",
    )
    .bind(i64::from(rules.safe_and_well_needs_approval))
    .bind(rules.approval_from_risk.map(|r| r.as_str()))
    .bind(i64::from(rules.high_risk_needs_companion))
    .bind(school_id.to_string())
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn find_by_name(pool: &sqlx::AnyPool, name: &str) -> Result<Option<Uuid>, ApiError> {
    let row: Option<(String,)> =
        sqlx::query_as("select school_id from schools where name = $1 order by created_at limit 1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    row.map(|(id,)| crate::db::parse_id(&id)).transpose()
}

pub async fn exists(pool: &sqlx::AnyPool, school_id: Uuid) -> Result<bool, ApiError> {
    let row: Option<(String,)> = sqlx::query_as("select school_id from schools where school_id = $1")
        .bind(school_id.to_string())
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

pub async fn retention_days<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    school_id: Uuid,
) -> Result<i64, ApiError> {
    let row: Option<(i64,)> = sqlx::query_as("select location_retention_days from schools where school_id = $1")
        .bind(school_id.to_string())
        .fetch_optional(exec)
        .await?;
    Ok(row.ok_or(ApiError::NotFound("school"))?.0)
}

pub async fn set_retention_days(tx: &mut WriteTx, school_id: Uuid, days: i64) -> Result<(), ApiError> {
    sqlx::query("update schools set location_retention_days = $1 where school_id = $2")
        .bind(days)
        .bind(school_id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}
