//! Location pings: position, accuracy and battery while a session is live.
//!
//! Phones report often, so on SQLite, whose single writer makes every commit wait for the disk in
//! turn, the pings of requests that arrive together are written in one transaction (group commit):
//! each request's work sits behind its own savepoint, so one that fails is undone and answered alone,
//! and every request is answered only once the transaction holding its pings has committed.
//! PostgreSQL commits concurrent transactions side by side, and a shared transaction there would hold
//! several sessions' row locks at once (a deadlock with a request that locks them in another order),
//! so there each request keeps its own transaction.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use homeward_shared::api::LocationPing;
use tokio::sync::{OwnedMutexGuard, oneshot};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::AuthUser;
use crate::clock::to_millis;
use crate::db::{Backend, Db, WriteTx};
use crate::error::ApiError;
use crate::store::sessions::{self, SessionRow};

/// The most requests written in one transaction; the rest wait for the next.
const MOST_IN_GROUP: usize = 256;

/// Requests whose pings wait to be written together (SQLite).
pub type PingQueue = Arc<Mutex<VecDeque<Queued>>>;

/// One request's pings, waiting for the group commit.
pub struct Queued {
    user: AuthUser,
    session_id: Uuid,
    pings: Vec<LocationPing>,
    now: Timestamp,
    reply: oneshot::Sender<Result<(usize, usize), ApiError>>,
}

/// Store a request's pings for `session_id`, each once by its id, and look at them for the signals
/// (battery, geofence, lost signal); returns (stored, duplicates) once they are committed.
pub async fn record(
    db: &Db,
    user: &AuthUser,
    session_id: Uuid,
    pings: Vec<LocationPing>,
    now: Timestamp,
) -> Result<(usize, usize), ApiError> {
    if db.backend == Backend::Postgres {
        // The scheduler locks a due lost-signal timer and then its session; this locks the session and
        // then cancels that timer: PostgreSQL breaks such a deadlock by failing one side, and a ping
        // request that loses simply runs again.
        let mut attempt = 1;
        loop {
            let mut tx = db.begin().await?;
            let result = match write(&mut tx, user, session_id, &pings, now).await {
                Ok(counts) => tx.commit().await.map(|()| counts).map_err(ApiError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if attempt < 3 && is_deadlock(&e) => attempt += 1,
                other => return other,
            }
        }
    }
    let (reply, mut answer) = oneshot::channel();
    db.ping_queue.lock().expect("the ping queue").push_back(Queued {
        user: user.clone(),
        session_id,
        pings,
        now,
        reply,
    });
    // Whoever gets the writer's slot first writes everything queued by then, this request's pings
    // included or not; a request whose pings went with someone else's group only waits for its answer.
    tokio::select! {
        biased;
        answer = &mut answer => return answered(answer),
        slot = db.write_slot() => {
            let group: Vec<Queued> = {
                let mut queue = db.ping_queue.lock().expect("the ping queue");
                let n = queue.len().min(MOST_IN_GROUP);
                queue.drain(..n).collect()
            };
            if !group.is_empty() {
                // Its own task: a caller that goes away must not abandon the others' pings mid-write.
                tokio::spawn(write_group(db.clone(), slot, group));
            }
        }
    }
    answered(answer.await)
}

/// PostgreSQL chose this transaction as a deadlock's victim (SQLSTATE 40P01).
fn is_deadlock(error: &ApiError) -> bool {
    match error {
        ApiError::Contended(e) => e.as_database_error().is_some_and(|e| e.code().as_deref() == Some("40P01")),
        _ => false,
    }
}

fn answered(
    answer: Result<Result<(usize, usize), ApiError>, oneshot::error::RecvError>,
) -> Result<(usize, usize), ApiError> {
    answer.unwrap_or_else(|_| Err(ApiError::Unexpected(anyhow::anyhow!("the group commit of pings was abandoned"))))
}

/// One request's pings inside the transaction: the session is read again under the writer's lock
/// (it may have ended since the request was checked).
async fn write(
    tx: &mut WriteTx,
    user: &AuthUser,
    session_id: Uuid,
    pings: &[LocationPing],
    now: Timestamp,
) -> Result<(usize, usize), ApiError> {
    let session = sessions::lock(tx, user, session_id).await?;
    let (stored, duplicates) = insert(tx, &session, user.user_id, pings, now).await?;
    if stored > 0 {
        let signals = tx.signals;
        crate::escalation::signals::on_pings(tx, &session, pings, signals, now).await?;
    }
    Ok((stored, duplicates))
}

/// Write a group of requests in one transaction and answer each after the commit.
async fn write_group(db: Db, slot: Option<OwnedMutexGuard<()>>, group: Vec<Queued>) {
    let mut tx = match db.begin_in(slot).await {
        Ok(tx) => tx,
        Err(e) => return fail_all(group.into_iter().map(|q| q.reply), &e.into()),
    };
    let mut written = Vec::with_capacity(group.len());
    let mut rest = group.into_iter();
    while let Some(q) = rest.next() {
        if let Err(e) = savepoint(&mut tx, "savepoint ping_request").await {
            let replies = written.into_iter().map(|(r, _)| r).chain([q.reply]).chain(rest.map(|q| q.reply));
            return fail_all(replies, &e);
        }
        match write(&mut tx, &q.user, q.session_id, &q.pings, q.now).await {
            Ok(counts) => match savepoint(&mut tx, "release savepoint ping_request").await {
                Ok(()) => written.push((q.reply, counts)),
                Err(e) => {
                    let replies = written.into_iter().map(|(r, _)| r).chain([q.reply]).chain(rest.map(|q| q.reply));
                    return fail_all(replies, &e);
                }
            },
            Err(refused) => {
                // This request's writes are undone; the others' stand.
                let undone = match savepoint(&mut tx, "rollback to savepoint ping_request").await {
                    Ok(()) => savepoint(&mut tx, "release savepoint ping_request").await,
                    Err(e) => Err(e),
                };
                let _ = q.reply.send(Err(refused));
                if let Err(e) = undone {
                    return fail_all(written.into_iter().map(|(r, _)| r).chain(rest.map(|q| q.reply)), &e);
                }
            }
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for (reply, counts) in written {
                let _ = reply.send(Ok(counts));
            }
        }
        Err(e) => fail_all(written.into_iter().map(|(r, _)| r), &e.into()),
    }
}

async fn savepoint(tx: &mut WriteTx, sql: &'static str) -> Result<(), ApiError> {
    sqlx::query(sql).execute(tx.conn()).await?;
    Ok(())
}

/// Nothing of these requests was stored: each is told to send its pings again (the phone keeps them).
fn fail_all(replies: impl Iterator<Item = oneshot::Sender<Result<(usize, usize), ApiError>>>, error: &ApiError) {
    tracing::error!(error = %error, "a group of location pings could not be written");
    for reply in replies {
        let _ = reply.send(Err(ApiError::Unavailable("the location could not be stored; send it again".into())));
    }
}

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
