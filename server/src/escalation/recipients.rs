//! Who a plan step reaches: the worker, their line manager, everyone with a role, named people, and
//! whoever the on-call rota names at the moment the step fires.

use std::collections::BTreeSet;

use homeward_shared::rota::OnCall;
use homeward_shared::{Recipient, Role};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::parse_id;
use crate::db::WriteTx;
use crate::error::ApiError;
use crate::store::sessions::SessionRow;

/// The active people of the worker's school a step's recipients name, without repeats. Unknown or
/// deactivated people are left out: a step names who should be told, the school decides who exists.
pub async fn resolve(
    tx: &mut WriteTx,
    session: &SessionRow,
    recipients: &[Recipient],
    exclude_worker: bool,
    now: Timestamp,
) -> Result<BTreeSet<Uuid>, ApiError> {
    let mut people = BTreeSet::new();
    for recipient in recipients {
        match recipient {
            Recipient::Worker => {
                people.insert(session.worker_id);
            }
            Recipient::LineManager => {
                let row: Option<(Option<String>,)> = sqlx::query_as(
                    "select m.user_id from users w join users m on m.user_id = w.line_manager_id \
                     where w.user_id = $1 and m.active = 1",
                )
                .bind(session.worker_id.to_string())
                .fetch_optional(tx.conn())
                .await?;
                if let Some((Some(id),)) = row {
                    people.insert(parse_id(&id)?);
                }
            }
            Recipient::Role { role } => people.extend(with_role(tx, session.school_id, *role).await?),
            Recipient::User { user_id } => {
                let row: Option<(String,)> =
                    sqlx::query_as("select user_id from users where user_id = $1 and school_id = $2 and active = 1")
                        .bind(user_id.to_string())
                        .bind(session.school_id.to_string())
                        .fetch_optional(tx.conn())
                        .await?;
                if row.is_some() {
                    people.insert(*user_id);
                }
            }
            Recipient::OnCallLeader => {
                if let Some(leader) = on_call(tx, session.school_id, now).await?.leader() {
                    let row: Option<(String,)> =
                        sqlx::query_as("select user_id from users where user_id = $1 and active = 1")
                            .bind(leader.to_string())
                            .fetch_optional(tx.conn())
                            .await?;
                    if row.is_some() {
                        people.insert(leader);
                    }
                }
            }
        }
    }
    if exclude_worker {
        people.remove(&session.worker_id);
    }
    Ok(people)
}

pub async fn with_role(tx: &mut WriteTx, school_id: Uuid, role: Role) -> Result<Vec<Uuid>, ApiError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("select user_id, roles from users where school_id = $1 and active = 1")
            .bind(school_id.to_string())
            .fetch_all(tx.conn())
            .await?;
    rows.into_iter()
        .filter(|(_, roles)| crate::store::users::decode_roles(roles).contains(&role))
        .map(|(id, _)| parse_id(&id))
        .collect()
}

/// Who the school's rota has on call at `now`.
pub async fn on_call(tx: &mut WriteTx, school_id: Uuid, now: Timestamp) -> Result<OnCall, ApiError> {
    let rota = crate::store::rota::get(tx.conn(), school_id).await?;
    Ok(crate::store::rota::on_call_at(&rota, now))
}
