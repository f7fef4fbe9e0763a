//! The signal-loss map: where phones stop sending their position during visits (the last fix before
//! each gap), and where staff marked "no signal here", grouped into cells of a metric grid so leaders see
//! the areas with repeated gaps.

use std::collections::{BTreeMap, BTreeSet};

use homeward_shared::api::{NoSignalMark, SignalCell, SignalMap};
use homeward_shared::geometry::{self, Cell};
use homeward_shared::{Coordinates, FieldError};
use uuid::Uuid;

use crate::Timestamp;
use crate::clock::{from_millis, to_millis};
use crate::db::WriteTx;
use crate::db::parse_id;
use crate::error::ApiError;

/// The grid's cells are about this wide and tall ([`geometry::cell_of`]).
pub const CELL_SIZE_M: f64 = 200.0;
/// No ping for this long during a visit is a gap.
pub const GAP_SECONDS: i64 = 300;
/// The most pings one map reads: a school's busiest quarter is far below it.
const MOST_PINGS: i64 = 500_000;

/// The last fix before each gap of `GAP_SECONDS` or more, from pings sorted by session then time:
/// (session, position, time).
pub fn gaps(pings: &[(String, f64, f64, i64)]) -> Vec<(String, Coordinates, i64)> {
    pings
        .windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[1].3 - w[0].3 >= GAP_SECONDS * 1000)
        .map(|w| (w[0].0.clone(), Coordinates { latitude: w[0].1, longitude: w[0].2 }, w[0].3))
        .collect()
}

#[derive(Default)]
struct Tally {
    gaps: i64,
    marks: i64,
    sessions: BTreeSet<String>,
    last_at: i64,
}

pub async fn build(pool: &sqlx::AnyPool, school_id: Uuid, since: Timestamp) -> Result<SignalMap, ApiError> {
    let school = school_id.to_string();
    let pings: Vec<(String, f64, f64, i64)> = sqlx::query_as(&format!(
        "select session_id, latitude, longitude, at from location_pings where school_id = $1 and at >= $2 \
         order by session_id, at limit {MOST_PINGS}"
    ))
    .bind(&school)
    .bind(to_millis(since))
    .fetch_all(pool)
    .await?;
    let marks: Vec<(f64, f64, i64)> = sqlx::query_as(
        "select latitude, longitude, created_at from no_signal_marks where school_id = $1 and created_at >= $2",
    )
    .bind(&school)
    .bind(to_millis(since))
    .fetch_all(pool)
    .await?;
    let mut cells: BTreeMap<Cell, Tally> = BTreeMap::new();
    for (session, at_position, at) in gaps(&pings) {
        let tally = cells.entry(geometry::cell_of(at_position, CELL_SIZE_M)).or_default();
        tally.gaps += 1;
        tally.sessions.insert(session);
        tally.last_at = tally.last_at.max(at);
    }
    for (latitude, longitude, at) in marks {
        let tally = cells.entry(geometry::cell_of(Coordinates { latitude, longitude }, CELL_SIZE_M)).or_default();
        tally.marks += 1;
        tally.last_at = tally.last_at.max(at);
    }
    let mut cells: Vec<SignalCell> = cells
        .into_iter()
        .map(|(cell, t)| {
            let centre = geometry::cell_centre(cell, CELL_SIZE_M);
            SignalCell {
                latitude: centre.latitude,
                longitude: centre.longitude,
                gaps: t.gaps,
                marks: t.marks,
                sessions: t.sessions.len() as i64,
                last_at: from_millis(t.last_at),
                repeated: t.gaps + t.marks >= 2,
            }
        })
        .collect();
    cells.sort_by(|a, b| (b.gaps + b.marks).cmp(&(a.gaps + a.marks)).then(b.last_at.cmp(&a.last_at)));
    Ok(SignalMap { cell_size_m: CELL_SIZE_M as i64, gap_seconds: GAP_SECONDS, since, cells })
}

pub fn note(raw: &str) -> Result<String, FieldError> {
    let note = raw.trim();
    if note.chars().count() > 300 {
        return Err(FieldError::new("note", "the note is at most 300 characters"));
    }
    Ok(note.to_string())
}

pub async fn mark(
    tx: &mut WriteTx,
    school_id: Uuid,
    user_id: Uuid,
    at: Coordinates,
    note: &str,
    now: Timestamp,
) -> Result<NoSignalMark, ApiError> {
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into no_signal_marks (mark_id, school_id, user_id, latitude, longitude, note, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.to_string())
    .bind(school_id.to_string())
    .bind(user_id.to_string())
    .bind(at.latitude)
    .bind(at.longitude)
    .bind(note)
    .bind(to_millis(now))
    .execute(tx.conn())
    .await?;
    Ok(NoSignalMark {
        id,
        latitude: at.latitude,
        longitude: at.longitude,
        note: note.to_string(),
        created_at: from_millis(to_millis(now)),
    })
}

/// The marks `user_id` made, newest first.
pub async fn marks_of(pool: &sqlx::AnyPool, user_id: Uuid) -> Result<Vec<NoSignalMark>, ApiError> {
    let rows: Vec<(String, f64, f64, String, i64)> = sqlx::query_as(
        "select mark_id, latitude, longitude, note, created_at from no_signal_marks where user_id = $1 \
         order by created_at desc limit 200",
    )
    .bind(user_id.to_string())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(id, latitude, longitude, note, at)| {
            Ok(NoSignalMark { id: parse_id(&id)?, latitude, longitude, note, created_at: from_millis(at) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_a_few_metres_apart_share_a_cell_and_far_ones_do_not() {
        let a = Coordinates { latitude: 51.50010, longitude: -0.12010 };
        let near = Coordinates { latitude: 51.50012, longitude: -0.12013 };
        let far = Coordinates { latitude: 51.51, longitude: -0.12 };
        let cell_of = |c| geometry::cell_of(c, CELL_SIZE_M);
        assert_eq!(cell_of(a), cell_of(near));
        assert_ne!(cell_of(a), cell_of(far));
        // The centre of a cell is in that cell, within a cell's width of the point.
        let centre = geometry::cell_centre(cell_of(a), CELL_SIZE_M);
        assert_eq!(cell_of(centre), cell_of(a));
        assert!(a.distance_m(&centre) < CELL_SIZE_M);
    }

    #[test]
    fn a_gap_is_the_last_fix_before_a_long_silence_within_one_session() {
        let pings = vec![
            ("s1".to_string(), 51.0, 0.0, 0),
            ("s1".to_string(), 51.1, 0.0, 60_000),
            ("s1".to_string(), 51.2, 0.0, 60_000 + GAP_SECONDS * 1000),
            ("s2".to_string(), 52.0, 0.0, 10_000_000),
        ];
        let found = gaps(&pings);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1.latitude, 51.1);
        assert_eq!(found[0].2, 60_000);
    }
}
