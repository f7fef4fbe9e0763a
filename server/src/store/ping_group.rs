//! SQLite's group commit of location pings in one hand-off: a group of queued ping requests read,
//! checked and written whole on the direct connection ([`crate::db::direct`]), instead of a dozen
//! statements each crossing to sqlx's connection thread and back.
//!
//! It writes only what the everyday ping needs: the rows, and, when it has fallen well behind, each
//! session's pending lost-signal check moved later. A group in which any request calls for more (a low battery or a geofence exit to raise
//! a notice for, a lost-signal check to arm afresh) is left whole to the sqlx path in
//! [`super::pings`], which does all of that, and so is a group this fails to write: nothing is kept of
//! it here, so the sqlx path starts from what was there before.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use homeward_shared::Coordinates;
use homeward_shared::api::LocationPing;
use homeward_shared::session::SessionStatus;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::AuthUser;
use crate::clock::{from_millis, to_millis};
use crate::db::direct::Direct;
use crate::error::ApiError;
use crate::escalation::signals::{self, SignalSettings};
use crate::escalation::timers::TimerKind;
use crate::store::pings::{self, Visit};
use crate::store::sessions;

/// One request of the group, as the direct write needs it.
pub struct Request {
    pub user: AuthUser,
    pub session_id: Uuid,
    pub pings: Vec<LocationPing>,
    pub now: Timestamp,
}

/// What became of a group.
pub enum Written {
    /// Committed: each request's (stored, duplicates), or why it was refused (a session it may not
    /// see, or pings [`pings::check_visit`] refuses); and the schools whose boards must look again.
    Committed { answers: Vec<Result<(usize, usize), ApiError>>, touched: BTreeSet<Uuid> },
    /// Nothing written: the group needs the sqlx path.
    NeedsMore,
}

/// What the group write reads of a session.
struct Target {
    school_id: Uuid,
    visit: Visit,
    /// Under way (and not ended): pings re-arm its lost-signal check and may raise notices.
    live: bool,
    location: Option<Coordinates>,
    geofence_radius_m: i64,
}

/// Write the group in one transaction on the direct connection (the caller holds the writer's turn).
pub async fn write(direct: &Arc<Direct>, group: Vec<Request>, settings: SignalSettings) -> anyhow::Result<Written> {
    let written = direct.run(move |conn| write_on(conn, &group, settings)).await?;
    if let Written::Committed { .. } = written {
        direct.commits.fetch_add(1, Ordering::Relaxed);
    }
    Ok(written)
}

fn write_on(conn: &mut rusqlite::Connection, group: &[Request], settings: SignalSettings) -> anyhow::Result<Written> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;

    // Read again under the writer's turn: a session may have ended since its request was checked.
    let mut found: HashMap<Uuid, Option<Target>> = HashMap::new();
    {
        let mut read = tx.prepare_cached(
            "select school_id, worker_id, companion_id, status, ended_at, latitude, longitude, geofence_radius_m, \
             created_at, started_at from sessions where session_id = ?1",
        )?;
        for q in group {
            if let Entry::Vacant(slot) = found.entry(q.session_id) {
                let row = read
                    .query_row(params![q.session_id.to_string()], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Option<String>>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, Option<i64>>(4)?,
                            row.get::<_, Option<f64>>(5)?.zip(row.get::<_, Option<f64>>(6)?),
                            row.get::<_, i64>(7)?,
                            row.get::<_, i64>(8)?,
                            row.get::<_, Option<i64>>(9)?,
                        ))
                    })
                    .optional()?;
                let target = match row {
                    Some((
                        school,
                        worker,
                        companion,
                        status,
                        ended_at,
                        location,
                        geofence_radius_m,
                        created,
                        started,
                    )) => {
                        let status: SessionStatus = sessions::enum_from("status", &status)?;
                        Some(Target {
                            school_id: Uuid::parse_str(&school)?,
                            visit: Visit {
                                worker_id: Uuid::parse_str(&worker)?,
                                companion_id: companion.as_deref().map(Uuid::parse_str).transpose()?,
                                created_at: from_millis(created),
                                started_at: started.map(from_millis),
                                ended_at: ended_at.map(from_millis),
                            },
                            live: status.is_live() && ended_at.is_none(),
                            location: location.map(|(latitude, longitude)| Coordinates { latitude, longitude }),
                            geofence_radius_m,
                        })
                    }
                    None => None,
                };
                slot.insert(target);
            }
        }
    }
    let checked: Vec<Result<&Target, ApiError>> = group
        .iter()
        .map(|q| {
            let visible = found[&q.session_id]
                .as_ref()
                .filter(|t| sessions::may_see(&q.user, t.school_id, t.visit.worker_id, t.visit.companion_id));
            match visible {
                Some(target) => pings::check_visit(&q.user, &target.visit, &q.pings, q.now).map(|()| target),
                None => Err(ApiError::NotFound("session")),
            }
        })
        .collect();
    let targets: Vec<Option<&Target>> = checked.iter().map(|c| c.as_ref().ok().copied()).collect();

    // Each ping once: the first request in the group to carry an id stores it; a later copy, like a
    // ping already stored, is a duplicate.
    let mut carried: BTreeSet<Uuid> = BTreeSet::new();
    let mut stored = vec![0usize; group.len()];
    {
        let mut insert = tx.prepare_cached(
            "insert into location_pings (ping_id, session_id, school_id, user_id, at, latitude, longitude, accuracy_m, \
             battery_percent, received_at) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) on conflict (ping_id) do nothing",
        )?;
        for ((q, target), stored) in group.iter().zip(&targets).zip(&mut stored) {
            let Some(target) = target else { continue };
            for ping in q.pings.iter().filter(|p| carried.insert(p.id)) {
                *stored += insert.execute(params![
                    ping.id.to_string(),
                    q.session_id.to_string(),
                    target.school_id.to_string(),
                    q.user.user_id.to_string(),
                    to_millis(ping.at),
                    ping.latitude,
                    ping.longitude,
                    ping.accuracy_m,
                    ping.battery_percent,
                    to_millis(q.now),
                ])?;
            }
        }
    }

    // Every live session that stored pings moves its lost-signal check on (from its newest ping here).
    let mut touched = BTreeSet::new();
    let mut due: BTreeMap<Uuid, (Timestamp, Timestamp)> = BTreeMap::new();
    for ((q, target), stored) in group.iter().zip(&targets).zip(&stored) {
        let Some(target) = target.filter(|_| *stored > 0) else { continue };
        touched.insert(target.school_id);
        if !target.live {
            continue;
        }
        let says = signals::ping_notices(target.location, target.geofence_radius_m, &q.pings);
        if says.is_some_and(|says| says.any()) {
            return Ok(Written::NeedsMore);
        }
        if let Some(at) = signals::next_signal_check(&q.pings, settings, q.now) {
            let due = due.entry(q.session_id).or_insert((at, q.now));
            if at > due.0 {
                *due = (at, q.now);
            }
        }
    }
    {
        // The check is moved only once it has fallen well behind (`signals::signal_check_to_move`).
        let mut pending = tx.prepare_cached(
            "select min(due_at) from timers where session_id = ?1 and kind = ?2 and fired_at is null \
             and cancelled_at is null",
        )?;
        let mut postpone = tx.prepare_cached(
            "update timers set due_at = ?1 where session_id = ?2 and kind = ?3 and fired_at is null \
             and cancelled_at is null and due_at <= ?1",
        )?;
        let kind = TimerKind::SignalCheck.as_str();
        for (session_id, (at, now)) in &due {
            let earliest: Option<i64> = pending.query_row(params![session_id.to_string(), kind], |row| row.get(0))?;
            let Some(earliest) = earliest else {
                // No pending check (it fired, or was never armed): arming one is the sqlx path's.
                return Ok(Written::NeedsMore);
            };
            if !signals::signal_check_to_move(earliest, *at, settings, *now) {
                continue;
            }
            postpone.execute(params![to_millis(*at), session_id.to_string(), kind])?;
        }
    }
    tx.commit()?;

    let answers = checked
        .into_iter()
        .zip(group)
        .zip(stored)
        .map(|((checked, q), stored)| checked.map(|_| (stored, q.pings.len() - stored)))
        .collect();
    Ok(Written::Committed { answers, touched })
}
