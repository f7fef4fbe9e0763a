//! Location pings: position, accuracy and battery while a session is live.
//!
//! Phones report often, so the pings of requests that arrive together are written in one transaction
//! (group commit), and every request is answered only once the transaction holding its pings has
//! committed. The group is written in a few statements (its sessions read at once, its pings inserted
//! at once, its lost-signal checks moved at once). Each request's visit is read there, under the turn
//! to write, and its pings checked against it ([`check_visit`]): the route reads nothing but the token.
//!
//! - On SQLite a group is written in the single writer's turn, after every other write waiting for it,
//!   and if any of it fails it is undone and written again request by request, each behind its own
//!   savepoint, so one request that fails is answered alone.
//! - On PostgreSQL a few groups are written side by side ([`POSTGRES_PING_WRITERS`]), which leaves the
//!   rest of the pool to the scheduler, the deliverer and every other request. A group locks its
//!   sessions without waiting (`skip locked`): a session another transaction holds is left out and
//!   written alone, in a transaction of its own, once the group has committed; so does every request of
//!   a group that fails.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::Duration;
use homeward_shared::FieldError;
use homeward_shared::api::LocationPing;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, oneshot};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::AuthUser;
use crate::clock::{CLOCK_SKEW_MINUTES, to_millis};
use crate::db::{Backend, Db, WriteTx, batch};
use crate::error::ApiError;
use crate::escalation::signals;
use crate::escalation::timers::{self, TimerKind};
use crate::store::ping_group::{self, Written};
use crate::store::sessions::{self, SessionRow};

/// The most requests written in one transaction; the rest wait for the next.
const MOST_IN_GROUP: usize = 256;

/// How many groups of pings PostgreSQL writes at once: enough that one group fills while another
/// commits, few enough that pings never hold more than these of the pool's connections.
pub const POSTGRES_PING_WRITERS: usize = 4;

/// Requests whose pings wait to be written together.
pub type PingQueue = Arc<Mutex<VecDeque<Queued>>>;

/// One request's pings, waiting for the group commit.
pub struct Queued {
    user: AuthUser,
    session_id: Uuid,
    pings: Vec<LocationPing>,
    now: Timestamp,
    reply: oneshot::Sender<Result<(usize, usize), ApiError>>,
}

/// A group's right to write: SQLite's single writer's turn, or one of PostgreSQL's ping writers.
enum Turn {
    Writer(Option<OwnedMutexGuard<()>>),
    PingWriter(OwnedSemaphorePermit),
}

impl Turn {
    async fn take(db: &Db) -> Turn {
        match db.backend {
            Backend::Sqlite => Turn::Writer(db.write_slot_after_others().await),
            Backend::Postgres => Turn::PingWriter(
                db.ping_writers.clone().acquire_owned().await.expect("the ping writers are never closed"),
            ),
        }
    }
}

/// What a request's pings are checked against: its visit, as read where they are written.
pub struct Visit {
    pub worker_id: Uuid,
    pub companion_id: Option<Uuid>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

impl From<&SessionRow> for Visit {
    fn from(s: &SessionRow) -> Self {
        Visit {
            worker_id: s.worker_id,
            companion_id: s.companion_id,
            created_at: s.created_at,
            started_at: s.started_at,
            ended_at: s.ended_at,
        }
    }
}

/// Whether `user` may report these pings for the visit (which they may see): only its worker or
/// companion do, only once it has started, and only for times within it, give or take the phone's
/// clock ([`CLOCK_SKEW_MINUTES`]).
pub fn check_visit(user: &AuthUser, visit: &Visit, pings: &[LocationPing], now: Timestamp) -> Result<(), ApiError> {
    if visit.worker_id != user.user_id && visit.companion_id != Some(user.user_id) {
        return Err(ApiError::Forbidden("only the visit's worker and companion report its events"));
    }
    let Some(started) = visit.started_at else {
        return Err(ApiError::conflict("not_started", "location is only recorded while a visit is under way"));
    };
    let skew = Duration::minutes(CLOCK_SKEW_MINUTES);
    for ping in pings {
        if ping.at < visit.created_at - skew {
            return Err(FieldError::new("pings.at", format!("{} is before the visit was planned", ping.at)).into());
        }
        if ping.at < started - skew || ping.at > visit.ended_at.unwrap_or(now + skew) {
            let why = format!("{} is outside the visit; location is only kept during it", ping.at);
            return Err(FieldError::new("pings.at", why).into());
        }
    }
    Ok(())
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
    let (reply, mut answer) = oneshot::channel();
    db.ping_queue.lock().expect("the ping queue").push_back(Queued {
        user: user.clone(),
        session_id,
        pings,
        now,
        reply,
    });
    // Whoever gets a turn first writes everything queued by then, this request's pings included or
    // not; a request whose pings went with someone else's group only waits for its answer.
    tokio::select! {
        biased;
        answer = &mut answer => return answered(answer),
        turn = Turn::take(db) => {
            let group: Vec<Queued> = {
                let mut queue = db.ping_queue.lock().expect("the ping queue");
                let n = queue.len().min(MOST_IN_GROUP);
                queue.drain(..n).collect()
            };
            if !group.is_empty() {
                // Its own task: a caller that goes away must not abandon the others' pings mid-write.
                tokio::spawn(write_group(db.clone(), turn, group));
            }
        }
    }
    answered(answer.await)
}

/// One request written in a transaction of its own (PostgreSQL: a session a group left out, or a
/// group that failed).
async fn record_alone(db: &Db, q: &Queued) -> Result<(usize, usize), ApiError> {
    // The scheduler locks a due timer and then its session; this locks the session and then may write
    // that session's timers: PostgreSQL breaks such a deadlock by failing one side, and a ping request
    // that loses simply runs again.
    let mut attempt = 1;
    loop {
        let mut tx = db.begin().await?;
        let result = match write(&mut tx, &q.user, q.session_id, &q.pings, q.now).await {
            Ok(counts) => tx.commit().await.map(|()| counts).map_err(ApiError::from),
            Err(e) => Err(e),
        };
        match result {
            Err(e) if attempt < 3 && is_deadlock(&e) => attempt += 1,
            other => return other,
        }
    }
}

/// Each of these requests in a transaction of its own, side by side, each answered as it commits.
async fn write_alone(db: &Db, requests: Vec<Queued>) {
    futures::future::join_all(requests.into_iter().map(|q| async move {
        let answer = record_alone(db, &q).await;
        let _ = q.reply.send(answer);
    }))
    .await;
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
    check_visit(user, &Visit::from(&session), pings, now)?;
    let (stored, duplicates) = insert(tx, &session, user.user_id, pings, now).await?;
    if stored > 0 {
        let signals = tx.signals;
        crate::escalation::signals::on_pings(tx, &session, pings, signals, now).await?;
    }
    Ok((stored, duplicates))
}

/// A request's answer: (stored, duplicates), or why it was refused.
type Answer = Result<(usize, usize), ApiError>;

/// Write a group of requests in one transaction and answer each after the commit: on SQLite in one
/// hand-off on the direct connection when the group needs nothing more than its rows and moved
/// lost-signal checks ([`ping_group`]), through sqlx otherwise.
async fn write_group(db: Db, turn: Turn, group: Vec<Queued>) {
    // A ping writer's permit is held until the whole group, left-out sessions included, is answered.
    let (slot, _ping_writer) = match turn {
        Turn::Writer(slot) => (slot, None),
        Turn::PingWriter(permit) => (None, Some(permit)),
    };
    if let Some(direct) = &db.direct {
        let requests = group
            .iter()
            .map(|q| ping_group::Request {
                user: q.user.clone(),
                session_id: q.session_id,
                pings: q.pings.clone(),
                now: q.now,
            })
            .collect();
        match ping_group::write(direct, requests, db.signals).await {
            Ok(Written::Committed { answers, touched }) => {
                for school in touched {
                    db.live.publish(school);
                }
                for (q, answer) in group.into_iter().zip(answers) {
                    let _ = q.reply.send(answer);
                }
                return;
            }
            Ok(Written::NeedsMore) => {}
            Err(e) => tracing::warn!(error = %e, "a group of location pings is written through sqlx instead"),
        }
    }
    let mut tx = match db.begin_in(slot).await {
        Ok(tx) => tx,
        Err(e) => return fail_all(group.into_iter().map(|q| q.reply), &e.into()),
    };
    match write_together(&mut tx, &group).await {
        Ok(answers) => match tx.commit().await {
            Ok(()) => {
                let mut left_out = Vec::new();
                for (q, answer) in group.into_iter().zip(answers) {
                    match answer {
                        Some(answer) => {
                            let _ = q.reply.send(answer);
                        }
                        None => left_out.push(q),
                    }
                }
                write_alone(&db, left_out).await;
            }
            Err(e) => fail_all(group.into_iter().map(|q| q.reply), &e.into()),
        },
        Err(e) => {
            tracing::warn!(error = %e, "a group of location pings is written again request by request");
            match (db.backend, tx.roll_back_keeping_turn().await) {
                (Backend::Postgres, Ok(_)) => write_alone(&db, group).await,
                (Backend::Sqlite, Ok(slot)) => write_one_by_one(db, slot, group).await,
                (_, Err(e)) => fail_all(group.into_iter().map(|q| q.reply), &e.into()),
            }
        }
    }
}

/// The whole group in a few statements. Returns each request's answer, or `None` for a request whose
/// session another transaction holds (PostgreSQL), to be written alone after this commits; an error
/// means the group's writes must not stand (the caller rolls back).
async fn write_together(tx: &mut WriteTx, group: &[Queued]) -> Result<Vec<Option<Answer>>, ApiError> {
    let ids: Vec<Uuid> = group.iter().map(|q| q.session_id).collect::<BTreeSet<_>>().into_iter().collect();
    // Read again under the writer's lock: a session may have ended since its request was checked.
    let found = sessions::lock_available(tx, &ids).await?;
    // On PostgreSQL a session missing here may only be locked by another transaction: written alone.
    let backend = tx.backend;
    let left_out = |q: &Queued| backend == Backend::Postgres && !found.contains_key(&q.session_id);
    let checked: Vec<Result<&SessionRow, ApiError>> = group
        .iter()
        .map(|q| match found.get(&q.session_id).filter(|s| s.visible_to(&q.user)) {
            Some(session) => check_visit(&q.user, &Visit::from(session), &q.pings, q.now).map(|()| session),
            None => Err(ApiError::NotFound("session")),
        })
        .collect();
    let targets: Vec<Option<&SessionRow>> = checked.iter().map(|c| c.as_ref().ok().copied()).collect();

    // Each ping once: the first request in the group to carry an id stores it; a later copy, like a
    // ping already stored, is a duplicate.
    let mut carrier: HashMap<Uuid, usize> = HashMap::new();
    let mut rows = Vec::new();
    for (i, (q, target)) in group.iter().zip(&targets).enumerate() {
        let Some(session) = target else { continue };
        for ping in &q.pings {
            if let Entry::Vacant(first) = carrier.entry(ping.id) {
                first.insert(i);
                rows.push(Row { session, user_id: q.user.user_id, ping, received_at: q.now });
            }
        }
    }
    let mut stored = vec![0; group.len()];
    for ping_id in insert_rows(tx, &rows).await? {
        stored[carrier[&ping_id]] += 1;
    }

    // Every session that stored pings keeps its lost-signal check behind them (from its newest ping
    // here): moved once it has fallen well behind, armed if there is none.
    let settings = tx.signals;
    let mut due: BTreeMap<Uuid, (Timestamp, &SessionRow, Timestamp)> = BTreeMap::new();
    for (i, (q, target)) in group.iter().zip(&targets).enumerate() {
        if let Some(session) = target.filter(|_| stored[i] > 0) {
            tx.touch_position(session.school_id);
            if let Some(at) = signals::signal_check_due(session, &q.pings, settings, q.now) {
                let later = due.get(&session.id).is_none_or(|(earlier, _, _)| at > *earlier);
                if later {
                    due.insert(session.id, (at, session, q.now));
                }
            }
        }
    }
    let due_ids: Vec<Uuid> = due.keys().copied().collect();
    let pending = timers::earliest_pending_for_sessions(tx, TimerKind::SignalCheck, &due_ids).await?;
    let mut moves = Vec::new();
    let mut to_arm = Vec::new();
    for (id, (at, _, now)) in &due {
        match pending.get(id) {
            None => to_arm.push(*id),
            Some(earliest) if signals::signal_check_to_move(*earliest, *at, settings, *now) => moves.push((*id, *at)),
            Some(_) => {}
        }
    }
    let moved = timers::postpone_for_sessions(tx, TimerKind::SignalCheck, &moves).await?;
    to_arm.extend(moves.iter().map(|(id, _)| *id).filter(|id| !moved.contains(id)));
    for id in to_arm {
        let (at, session, now) = due[&id];
        signals::replace_signal_check(tx, session, at, now).await?;
    }
    for (i, (q, target)) in group.iter().zip(&targets).enumerate() {
        if let Some(session) = target.filter(|_| stored[i] > 0) {
            signals::on_ping_positions(tx, session, &q.pings, settings, q.now).await?;
        }
    }

    Ok(group
        .iter()
        .zip(checked)
        .zip(stored)
        .map(|((q, checked), stored)| match checked {
            _ if left_out(q) => None,
            Ok(_) => Some(Ok((stored, q.pings.len() - stored))),
            Err(refused) => Some(Err(refused)),
        })
        .collect())
}

/// One ping to insert, with what the row needs besides it.
struct Row<'a> {
    session: &'a SessionRow,
    user_id: Uuid,
    ping: &'a LocationPing,
    received_at: Timestamp,
}

/// Insert pings whose ids are not stored yet; returns the ids inserted.
async fn insert_rows(tx: &mut WriteTx, rows: &[Row<'_>]) -> Result<HashSet<Uuid>, ApiError> {
    let mut inserted = HashSet::with_capacity(rows.len());
    for piece in batch::pieces(rows, 512) {
        let sql = format!(
            "insert into location_pings (ping_id, session_id, school_id, user_id, at, latitude, longitude, accuracy_m, \
             battery_percent, received_at) values {} on conflict (ping_id) do nothing returning ping_id",
            batch::tuples(piece.len(), 10)
        );
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for row in piece {
            query = query
                .bind(row.ping.id.to_string())
                .bind(row.session.id.to_string())
                .bind(row.session.school_id.to_string())
                .bind(row.user_id.to_string())
                .bind(to_millis(row.ping.at))
                .bind(row.ping.latitude)
                .bind(row.ping.longitude)
                .bind(row.ping.accuracy_m)
                .bind(row.ping.battery_percent)
                .bind(to_millis(row.received_at));
        }
        for (ping_id,) in query.fetch_all(tx.conn()).await? {
            inserted.insert(crate::db::parse_id(&ping_id)?);
        }
    }
    Ok(inserted)
}

/// The group again, request by request, each behind a savepoint (after [`write_together`] failed).
async fn write_one_by_one(db: Db, slot: Option<OwnedMutexGuard<()>>, group: Vec<Queued>) {
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
        let _ = reply.send(Err(ApiError::Unavailable("the location could not be stored; try again shortly".into())));
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
    tx.touch_position(session.school_id);
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
