//! Each school's on-call rota, stored whole as one validated JSON document, and who it names at an
//! instant (the rota's times are the school's wall-clock times, so summer time is handled here).

use chrono_tz::Tz;
use homeward_shared::rota::{OnCall, OnCallRota};
use homeward_shared::{FieldError, Role};
use uuid::Uuid;

use crate::Timestamp;
use crate::clock::to_millis;
use crate::db::WriteTx;
use crate::error::ApiError;

pub fn timezone(rota: &OnCallRota) -> Result<Tz, FieldError> {
    rota.timezone.parse::<Tz>().map_err(|_| {
        FieldError::new("timezone", format!("`{}` is not a time zone; use a name such as Europe/London", rota.timezone))
    })
}

/// Who is on call at `at`. A stored rota always has a valid time zone; should one not, London is used.
pub fn on_call_at(rota: &OnCallRota, at: Timestamp) -> OnCall {
    let tz = timezone(rota).unwrap_or(chrono_tz::Europe::London);
    rota.on_call_at(at.with_timezone(&tz).naive_local())
}

/// The school's rota, or an empty one (nobody on call) if it has none.
pub async fn get<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    school_id: Uuid,
) -> Result<OnCallRota, ApiError> {
    let row: Option<(String,)> = sqlx::query_as("select rota from on_call_rotas where school_id = $1")
        .bind(school_id.to_string())
        .fetch_optional(exec)
        .await?;
    match row {
        Some((json,)) => serde_json::from_str(&json)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("the stored on-call rota is unreadable: {e}"))),
        None => Ok(OnCallRota::default()),
    }
}

/// Check a rota against the school: a real time zone, and every person named an active leader, DSL or
/// admin of this school (staff do not hold the on-call phone).
pub async fn validate(tx: &mut WriteTx, school_id: Uuid, rota: OnCallRota) -> Result<OnCallRota, ApiError> {
    let rota = rota.parse()?;
    timezone(&rota)?;
    for person in rota.people() {
        let row: Option<(String, i64)> =
            sqlx::query_as("select roles, active from users where user_id = $1 and school_id = $2")
                .bind(person.to_string())
                .bind(school_id.to_string())
                .fetch_optional(tx.conn())
                .await?;
        let Some((roles, active)) = row else {
            return Err(FieldError::new("user_id", format!("user {person} is not a member of this school")).into());
        };
        if active == 0 {
            return Err(FieldError::new("user_id", format!("user {person} is deactivated")).into());
        }
        let roles = crate::store::users::decode_roles(&roles);
        if !roles.iter().any(|r| matches!(r, Role::Leader | Role::Dsl | Role::Admin)) {
            return Err(FieldError::new(
                "user_id",
                format!("user {person} is not a leader, the DSL or an admin, so cannot be on call"),
            )
            .into());
        }
    }
    Ok(rota)
}

pub async fn put(
    tx: &mut WriteTx,
    school_id: Uuid,
    rota: &OnCallRota,
    by: Uuid,
    now: Timestamp,
) -> Result<(), ApiError> {
    let json = serde_json::to_string(rota).map_err(anyhow::Error::from)?;
    sqlx::query(
        "insert into on_call_rotas (school_id, rota, updated_by, updated_at) values ($1, $2, $3, $4) \
         on conflict (school_id) do update set rota = excluded.rota, updated_by = excluded.updated_by, \
         updated_at = excluded.updated_at",
    )
    .bind(school_id.to_string())
    .bind(json)
    .bind(by.to_string())
    .bind(to_millis(now))
    .execute(tx.conn())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use homeward_shared::rota::{Day, RotaShift};

    #[test]
    fn rota_times_are_london_wall_clock_times_in_summer_and_winter() {
        let leader = Uuid::new_v4();
        let rota = OnCallRota {
            weekly: vec![RotaShift {
                day: Day::Tuesday,
                start: "18:00".parse().unwrap(),
                end: "20:00".parse().unwrap(),
                user_id: leader,
            }],
            ..OnCallRota::default()
        };
        // 10 March 2026 is GMT: 18:30 UTC is 18:30 in London.
        assert_eq!(
            on_call_at(&rota, chrono::Utc.with_ymd_and_hms(2026, 3, 10, 18, 30, 0).unwrap()).leader(),
            Some(leader)
        );
        // 16 June 2026 is BST: 19:30 UTC is 20:30 in London, after the shift; 17:30 UTC is 18:30, in it.
        assert_eq!(on_call_at(&rota, chrono::Utc.with_ymd_and_hms(2026, 6, 16, 19, 30, 0).unwrap()), OnCall::Uncovered);
        assert_eq!(
            on_call_at(&rota, chrono::Utc.with_ymd_and_hms(2026, 6, 16, 17, 30, 0).unwrap()).leader(),
            Some(leader)
        );
        let bad = OnCallRota { timezone: "Mars/Olympus".into(), ..OnCallRota::default() };
        assert_eq!(timezone(&bad).unwrap_err().field, "timezone");
    }
}
