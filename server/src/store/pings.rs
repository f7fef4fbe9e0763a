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
