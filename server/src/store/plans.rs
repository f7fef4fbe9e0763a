//! Escalation plans: each school's agreed plans, one of them the default.

use homeward_shared::EscalationPlan;
use homeward_shared::api::EscalationPlanView;
use uuid::Uuid;

use crate::Timestamp;
use crate::clock::from_millis;
use crate::db::WriteTx;
use crate::db::parse_id;
use crate::error::ApiError;
use crate::store::audit;

#[tracing::instrument(skip_all)]
pub async fn insert(
    tx: &mut WriteTx,
    school_id: Uuid,
    actor_id: Option<Uuid>,
    plan: &EscalationPlan,
    is_default: bool,
    now: Timestamp,
) -> Result<Uuid, ApiError> {
    let id = Uuid::new_v4();
    if is_default {
        clear_default(tx, school_id).await?;
    }
    let result = sqlx::query(
        "insert into escalation_plans (plan_id, school_id, name, is_default, steps, repeat_every_seconds, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(id.to_string())
    .bind(school_id.to_string())
    .bind(&plan.name)
    .bind(i64::from(is_default))
    .bind(serde_json::to_string(&plan.steps).map_err(anyhow::Error::from)?)
    .bind(plan.repeat_every_seconds)
    .bind(now.timestamp_millis())
    .execute(tx.conn())
    .await;
    map_name_conflict(result, &plan.name)?;
    audit::append(
        tx,
        audit::Action {
            school_id,
            actor_id,
            action: "escalation_plan.created",
            subject: format!("escalation_plan:{id}"),
            detail: serde_json::to_string(plan).map_err(anyhow::Error::from)?,
            at: now,
        },
    )
    .await?;
    Ok(id)
}

#[tracing::instrument(skip_all)]
pub async fn update(
    tx: &mut WriteTx,
    school_id: Uuid,
    actor_id: Uuid,
    id: Uuid,
    plan: &EscalationPlan,
    is_default: bool,
    now: Timestamp,
) -> Result<(), ApiError> {
    let current = get_in_school(tx.conn(), school_id, id).await?;
    if current.is_default && !is_default {
        return Err(ApiError::conflict(
            "default_plan_required",
            "a school always has a default plan: make another plan the default instead",
        ));
    }
    if is_default {
        clear_default(tx, school_id).await?;
    }
    let result = sqlx::query(
        "update escalation_plans set name = $1, steps = $2, repeat_every_seconds = $3, is_default = $4, updated_at = $5 \
         where plan_id = $6 and school_id = $7",
    )
    .bind(&plan.name)
    .bind(serde_json::to_string(&plan.steps).map_err(anyhow::Error::from)?)
    .bind(plan.repeat_every_seconds)
    .bind(i64::from(is_default))
    .bind(now.timestamp_millis())
    .bind(id.to_string())
    .bind(school_id.to_string())
    .execute(tx.conn())
    .await;
    map_name_conflict(result, &plan.name)?;
    audit::append(
        tx,
        audit::Action {
            school_id,
            actor_id: Some(actor_id),
            action: "escalation_plan.updated",
            subject: format!("escalation_plan:{id}"),
            detail: serde_json::to_string(plan).map_err(anyhow::Error::from)?,
            at: now,
        },
    )
    .await?;
    Ok(())
}

async fn clear_default(tx: &mut WriteTx, school_id: Uuid) -> Result<(), ApiError> {
    sqlx::query("update escalation_plans set is_default = 0 where school_id = $1")
        .bind(school_id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}

fn map_name_conflict(result: Result<sqlx::any::AnyQueryResult, sqlx::Error>, name: &str) -> Result<(), ApiError> {
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(ApiError::conflict("plan_name_taken", format!("this school already has a plan called `{name}`")))
        }
        other => other.map(|_| ()).map_err(ApiError::from),
    }
}

type Row = (String, String, i64, String, i64, i64);
const SELECT: &str = "select plan_id, name, is_default, steps, repeat_every_seconds, updated_at from escalation_plans";

fn to_view(row: Row) -> Result<EscalationPlanView, ApiError> {
    let (id, name, is_default, steps, repeat_every_seconds, updated_at) = row;
    Ok(EscalationPlanView {
        id: parse_id(&id)?,
        name,
        is_default: is_default != 0,
        steps: serde_json::from_str(&steps).map_err(anyhow::Error::from)?,
        repeat_every_seconds,
        updated_at: from_millis(updated_at),
    })
}

pub async fn list(pool: &sqlx::AnyPool, school_id: Uuid) -> Result<Vec<EscalationPlanView>, ApiError> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} where school_id = $1 order by is_default desc, name"))
        .bind(school_id.to_string())
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(to_view).collect()
}

pub async fn get_in_school<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    school_id: Uuid,
    id: Uuid,
) -> Result<EscalationPlanView, ApiError> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} where plan_id = $1 and school_id = $2"))
        .bind(id.to_string())
        .bind(school_id.to_string())
        .fetch_optional(exec)
        .await?;
    row.map(to_view).transpose()?.ok_or(ApiError::NotFound("escalation plan"))
}

pub async fn default_for<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    school_id: Uuid,
) -> Result<Uuid, ApiError> {
    let row: Option<(String,)> =
        sqlx::query_as("select plan_id from escalation_plans where school_id = $1 and is_default = 1 limit 1")
            .bind(school_id.to_string())
            .fetch_optional(exec)
            .await?;
    let (id,) = row.ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("school {school_id} has no default plan")))?;
    parse_id(&id)
}
