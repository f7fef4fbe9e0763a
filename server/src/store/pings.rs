//! Location pings: position, accuracy and battery while a session is live.

use homeward_shared::api::LocationPing;
use uuid::Uuid;

use crate::Timestamp;
use crate::clock::to_millis;
use crate::db::WriteTx;
use crate::error::ApiError;
use crate::store::sessions::SessionRow;

/// Store pings once each (a resent batch is harmless); returns (stored, duplicates).
#[tracing::instrument(skip_all, fields(session = %session.id, pings = pings.len()))]
pub async fn insert(
    tx: &mut WriteTx,
    session: &SessionRow,
    user_id: Uuid,
    pings: &[LocationPing],
    now: Timestamp,
) -> Result<(usize, usize), ApiError> {
    let mut stored = 0;
    // The board shows the last position and battery.
    tx.touch(session.school_id);
    for ping in pings {
        let result = sqlx::query(
            "insert into location_pings (ping_id, session_id, school_id, user_id, at, latitude, longitude, accuracy_m, battery_percent, received_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) on conflict (ping_id) do nothing",
        )
        .bind(ping.id.to_string())
        .bind(session.id.to_string())
        .bind(session.school_id.to_string())
        .bind(user_id.to_string())
        .bind(to_millis(ping.at))
        .bind(ping.latitude)
        .bind(ping.longitude)
        .bind(ping.accuracy_m)
        .bind(ping.battery_percent)
        .bind(to_millis(now))
        .execute(tx.conn())
        .await?;
        stored += result.rows_affected() as usize;
    }
    Ok((stored, pings.len() - stored))
}

/// Delete pings older than their school's retention period, except those of a visit whose alert is
/// still open or was resolved as an incident or a police call: those are evidence. Returns how many
/// were deleted.
#[tracing::instrument(skip_all)]
pub async fn purge_expired(db: &crate::db::Db, now: Timestamp) -> Result<u64, ApiError> {
    let mut tx = db.begin().await?;
    let result = sqlx::query(
        "delete from location_pings where ping_id in ( \
           select p.ping_id from location_pings p join schools s on s.school_id = p.school_id \
           where p.at < $1 - s.location_retention_days * 86400000 \
           and not exists (select 1 from alerts a where a.session_id = p.session_id \
             and (a.status in ('escalating', 'acknowledged') or a.resolution in ('incident', 'police_called'))))",
    )
    .bind(to_millis(now))
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(result.rows_affected())
}
