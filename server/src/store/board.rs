//! The live board: every visit out there now, with its last position, battery and open alerts, the most
//! urgent first.

use std::collections::BTreeMap;

use homeward_shared::api::{AlertKind, AlertStatus, BoardAlert, BoardEntry, BoardPosition, BoardView};
use homeward_shared::session::{AlarmKind, SessionStatus};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::AuthUser;
use crate::clock::from_millis;
use crate::db::parse_id;
use crate::error::ApiError;
use crate::store::alerts;
use crate::store::sessions;

/// The most visits one board shows; a school never has this many out at once.
const MOST: i64 = 2_000;

type PingRow = (String, f64, f64, f64, i64, Option<i64>);

/// The board as `viewer` may see it (a duress alarm on their own visit stays hidden from them).
pub async fn build(
    pool: &sqlx::AnyPool,
    viewer: &AuthUser,
    map_tile_url: &str,
    now: Timestamp,
) -> Result<BoardView, ApiError> {
    Ok(build_for_school(pool, viewer.school_id, map_tile_url, now).await?.view(viewer))
}

/// The school's board before anyone looks at it, built once however many watch it: each viewer is
/// shown [`SchoolBoard::view`].
pub struct SchoolBoard {
    generated_at: Timestamp,
    map_tile_url: String,
    /// Most urgent first, every alert included.
    entries: Vec<Entry>,
}

struct Entry {
    board: BoardEntry,
    companion_id: Option<Uuid>,
}

impl Entry {
    /// The person on the visit: its worker or companion.
    fn is_worker_side(&self, user_id: Uuid) -> bool {
        self.board.worker_id == user_id || self.companion_id == Some(user_id)
    }
}

impl SchoolBoard {
    /// The board as `viewer` may see it. Whatever their role, the people on a visit never learn of its
    /// duress alarm, as with [`SessionRow::view`](crate::store::sessions::SessionRow::view): to them the
    /// visit ended normally, so it is not on their board, and a duress alert on it is not shown.
    pub fn view(&self, viewer: &AuthUser) -> BoardView {
        self.view_as(Some(viewer.user_id))
    }

    /// The board as everyone on none of its visits sees it.
    pub fn responders_view(&self) -> BoardView {
        self.view_as(None)
    }

    /// Whether `viewer` sees less than [`SchoolBoard::responders_view`]: they are on a visit with a duress
    /// alarm or alert.
    pub fn hides_from(&self, viewer: &AuthUser) -> bool {
        self.entries.iter().any(|e| {
            e.is_worker_side(viewer.user_id)
                && (e.board.alarm == Some(AlarmKind::Duress)
                    || e.board.alerts.iter().any(|a| a.kind == AlertKind::Duress))
        })
    }

    fn view_as(&self, viewer: Option<Uuid>) -> BoardView {
        let sessions = self
            .entries
            .iter()
            .filter_map(|entry| {
                let worker_side = viewer.is_some_and(|v| entry.is_worker_side(v));
                if !worker_side {
                    return Some(entry.board.clone());
                }
                if entry.board.alarm == Some(AlarmKind::Duress) {
                    return None;
                }
                let mut board = entry.board.clone();
                board.alerts.retain(|a| a.kind != AlertKind::Duress);
                Some(board)
            })
            .collect();
        BoardView { generated_at: self.generated_at, map_tile_url: self.map_tile_url.clone(), sessions }
    }
}

/// Every live visit of the school with all its open alerts, for [`SchoolBoard::view`] to show each viewer.
pub async fn build_for_school(
    pool: &sqlx::AnyPool,
    school_id: Uuid,
    map_tile_url: &str,
    now: Timestamp,
) -> Result<SchoolBoard, ApiError> {
    let rows = sessions::live(pool, school_id, MOST).await?;
    let school = school_id.to_string();
    // The latest ping of each live visit, and the latest battery reading (a ping may come without one).
    let pings: Vec<PingRow> = sqlx::query_as(
        // One index probe per live visit (`location_pings (session_id, at)`), never a scan of every ping
        // the live visits have sent: the board is rebuilt on every change.
        "select s.session_id, p.latitude, p.longitude, p.accuracy_m, p.at, \
         (select b.battery_percent from location_pings b where b.session_id = s.session_id \
          and b.battery_percent is not null order by b.at desc limit 1) \
         from sessions s join location_pings p on p.ping_id = \
           (select q.ping_id from location_pings q where q.session_id = s.session_id order by q.at desc limit 1) \
         where s.school_id = $1 and s.status in ('active', 'overdue', 'alarm')",
    )
    .bind(&school)
    .fetch_all(pool)
    .await?;
    let mut last: BTreeMap<Uuid, (BoardPosition, Option<i64>)> = BTreeMap::new();
    for (session_id, latitude, longitude, accuracy_m, at, battery) in pings {
        let at = from_millis(at);
        let position = BoardPosition { latitude, longitude, accuracy_m, at, age_seconds: (now - at).num_seconds() };
        last.insert(parse_id(&session_id)?, (position, battery));
    }
    let owners: BTreeMap<Uuid, String> =
        sqlx::query_as::<_, (String, String)>("select user_id, name from users where school_id = $1")
            .bind(&school)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|(id, name)| Ok((parse_id(&id)?, name)))
            .collect::<Result<_, ApiError>>()?;
    let mut open: BTreeMap<Uuid, Vec<BoardAlert>> = BTreeMap::new();
    for alert in alerts::list_for_school(pool, school_id, true).await? {
        open.entry(alert.session_id).or_default().push(BoardAlert {
            id: alert.id,
            kind: alert.kind,
            status: alert.status,
            owner_id: alert.acknowledged_by,
            owner_name: alert.acknowledged_by.and_then(|o| owners.get(&o).cloned()),
        });
    }

    let mut entries = Vec::new();
    for row in rows {
        if !row.status.is_live() {
            continue;
        }
        let mut alerts: Vec<BoardAlert> = open.remove(&row.id).unwrap_or_default();
        alerts.sort_by_key(|a| (alert_rank(a.kind), a.status != AlertStatus::Escalating));
        let (position, battery) = match last.remove(&row.id) {
            Some((position, battery)) => (Some(position), battery),
            None => (None, None),
        };
        let board = BoardEntry {
            session_id: row.id,
            worker_id: row.worker_id,
            worker_name: row.worker_name,
            kind: row.kind,
            sub_kind: row.sub_kind,
            address: row.address,
            status: row.status,
            alarm: row.alarm,
            deadline: row.deadline,
            seconds_to_deadline: row.deadline.map(|d| (d - now).num_seconds()),
            started_at: row.started_at,
            last_position: position,
            battery_percent: battery,
            alerts,
        };
        entries.push(Entry { board, companion_id: row.companion_id });
    }
    entries.sort_by_key(|e| (status_rank(e.board.status), e.board.deadline.map_or(i64::MAX, |d| d.timestamp_millis())));
    Ok(SchoolBoard { generated_at: now, map_tile_url: map_tile_url.to_string(), entries })
}

/// Alarms first, then overdue, then the rest.
fn status_rank(status: SessionStatus) -> u8 {
    match status {
        SessionStatus::Alarm => 0,
        SessionStatus::Overdue => 1,
        _ => 2,
    }
}

fn alert_rank(kind: AlertKind) -> u8 {
    match kind {
        AlertKind::Panic | AlertKind::Duress => 0,
        AlertKind::MissedDeadline => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_come_before_overdue_before_active() {
        let mut statuses = [SessionStatus::Active, SessionStatus::Alarm, SessionStatus::Overdue];
        statuses.sort_by_key(|s| status_rank(*s));
        assert_eq!(statuses, [SessionStatus::Alarm, SessionStatus::Overdue, SessionStatus::Active]);
        assert!(alert_rank(AlertKind::Panic) < alert_rank(AlertKind::MissedDeadline));
        assert!(alert_rank(AlertKind::MissedDeadline) < alert_rank(AlertKind::LowBattery));
    }

    fn entry(worker: Uuid, companion: Option<Uuid>, alarm: Option<AlarmKind>, alerts: &[AlertKind]) -> Entry {
        let board = BoardEntry {
            session_id: Uuid::new_v4(),
            worker_id: worker,
            worker_name: "Worker".into(),
            kind: "home_visit".into(),
            sub_kind: None,
            address: "1 Street".into(),
            status: if alarm.is_some() { SessionStatus::Alarm } else { SessionStatus::Active },
            alarm,
            deadline: None,
            seconds_to_deadline: None,
            started_at: None,
            last_position: None,
            battery_percent: None,
            alerts: alerts
                .iter()
                .map(|&kind| BoardAlert {
                    id: Uuid::new_v4(),
                    kind,
                    status: AlertStatus::Escalating,
                    owner_id: None,
                    owner_name: None,
                })
                .collect(),
        };
        Entry { board, companion_id: companion }
    }

    fn viewer(user_id: Uuid) -> AuthUser {
        AuthUser {
            user_id,
            school_id: Uuid::new_v4(),
            name: "Leader".into(),
            roles: vec![homeward_shared::Role::Leader],
            token_hash: String::new(),
            device_id: None,
        }
    }

    #[test]
    fn the_people_on_a_visit_never_see_its_duress_and_everyone_else_sees_all() {
        let (worker, companion, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let board = SchoolBoard {
            generated_at: chrono::Utc::now(),
            map_tile_url: String::new(),
            entries: vec![
                entry(worker, Some(companion), Some(AlarmKind::Duress), &[AlertKind::Duress]),
                // An alarm of another kind stays; only the duress alert on it is hidden from its people.
                entry(worker, Some(companion), Some(AlarmKind::Panic), &[AlertKind::Panic, AlertKind::Duress]),
                entry(other, None, None, &[]),
            ],
        };
        let kinds = |view: &BoardView| -> Vec<Vec<AlertKind>> {
            view.sessions.iter().map(|e| e.alerts.iter().map(|a| a.kind).collect()).collect()
        };
        let everyone = board.responders_view();
        assert_eq!(kinds(&everyone), [vec![AlertKind::Duress], vec![AlertKind::Panic, AlertKind::Duress], vec![]]);
        for person in [worker, companion] {
            assert!(board.hides_from(&viewer(person)));
            let theirs = board.view(&viewer(person));
            assert_eq!(kinds(&theirs), [vec![AlertKind::Panic], vec![]]);
            assert_eq!(theirs.sessions[0].session_id, board.entries[1].board.session_id);
        }
        // Someone on a visit without duress sees what everyone sees, so the shared frame serves them.
        assert!(!board.hides_from(&viewer(other)));
        assert_eq!(board.view(&viewer(other)), everyone);
        assert!(!board.hides_from(&viewer(Uuid::new_v4())));
    }
}
