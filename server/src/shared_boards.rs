//! One live board per school, shared by every stream watching it. While a school has a stream open, one
//! task hears the school's changes, builds its board once per change and hands it to all of them; each
//! stream only picks what its viewer may see. Builds are spaced out, so a burst of changes (pings
//! several times a second) costs a few builds, and the last change is always in the last one. The task
//! and its entry go with the school's last stream.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::web::{self, Bytes};
use homeward_shared::api::BoardView;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::live;
use crate::state::AppState;
use crate::store::board::{self, SchoolBoard};

/// Changes this close together are sent as one board.
const SETTLE: Duration = Duration::from_millis(150);

/// A build starts at least this many times the last one's duration after that one started: however
/// busy the school, its board takes a bounded share of the CPU.
const SPACING: u32 = 3;

/// The schools whose boards are being watched.
#[derive(Default)]
pub struct SharedBoards {
    schools: Arc<Mutex<HashMap<Uuid, School>>>,
    /// Tells a school's entry from the one it replaced.
    entries: AtomicU64,
    builds: AtomicU64,
}

/// A school with streams open.
struct School {
    entry: u64,
    streams: usize,
    /// Every stream's receiver is a copy of this one.
    latest: watch::Receiver<Option<Arc<Built>>>,
    /// How many builds the school's task has started.
    started: Arc<AtomicU64>,
    /// Dropped with the entry, which ends the task.
    _stop: oneshot::Sender<()>,
}

/// One build of a school's board, as all its streams receive it.
pub struct Built {
    generation: u64,
    /// `None` when it could not be built.
    board: Option<SchoolBoard>,
    /// The board as everyone on none of its visits sees it, or the comment saying it could not be built.
    frame: Bytes,
}

impl Built {
    /// What to send `viewer`: the shared frame, unless the board hides something from them.
    pub fn frame_for(&self, viewer: &AuthUser) -> Bytes {
        match &self.board {
            Some(board) if board.hides_from(viewer) => frame(&board.view(viewer)).unwrap_or_else(|e| failed(&e)),
            _ => self.frame.clone(),
        }
    }
}

impl SharedBoards {
    /// How many boards were built for streams (their first boards included): the work they cost.
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// How many schools have a shared board now.
    pub fn schools(&self) -> usize {
        self.lock().len()
    }

    /// Build `school`'s board.
    pub async fn build(&self, state: &AppState, school: Uuid) -> Result<SchoolBoard, ApiError> {
        self.builds.fetch_add(1, Ordering::Relaxed);
        board::build_for_school(&state.db.pool, school, &state.settings.map_tile_url, state.clock.now()).await
    }

    /// Start watching `school`'s shared board, starting its task if it has none. Every board built
    /// from now on reaches the stream: build its first board after this, and no change is missed.
    pub fn watch(&self, state: &web::Data<AppState>, school: Uuid) -> Watching {
        let mut schools = self.lock();
        // A task that died (it can only panic) is replaced; its streams have ended or are ending.
        if schools.get(&school).is_some_and(|s| s.latest.has_changed().is_err()) {
            schools.remove(&school);
        }
        let entry = schools.entry(school).or_insert_with(|| {
            let (sender, latest) = watch::channel(None);
            let started = Arc::new(AtomicU64::new(0));
            let (stop, stopped) = oneshot::channel();
            // Subscribed now, before the stream builds its first board.
            let changes = state.db.live.subscribe();
            tokio::spawn(run(state.clone(), school, sender, started.clone(), changes, stopped));
            School { entry: self.entries.fetch_add(1, Ordering::Relaxed), streams: 0, latest, started, _stop: stop }
        });
        entry.streams += 1;
        let mut latest = entry.latest.clone();
        latest.mark_unchanged();
        Watching {
            latest,
            // A build already started may have read the database before this stream began watching.
            stale_through: entry.started.load(Ordering::SeqCst),
            school,
            entry: entry.entry,
            schools: self.schools.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, School>> {
        self.schools.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A stream's hold on its school's shared board; the school's entry goes with its last one.
pub struct Watching {
    latest: watch::Receiver<Option<Arc<Built>>>,
    stale_through: u64,
    school: Uuid,
    entry: u64,
    schools: Arc<Mutex<HashMap<Uuid, School>>>,
}

impl Watching {
    /// The next board built since this stream began watching; `None` if the school's task is gone.
    pub async fn next(&mut self) -> Option<Arc<Built>> {
        loop {
            self.latest.changed().await.ok()?;
            let built = self.latest.borrow_and_update().clone();
            if let Some(built) = built
                && built.generation > self.stale_through
            {
                return Some(built);
            }
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut schools = self.schools.lock().unwrap_or_else(PoisonError::into_inner);
        if let Entry::Occupied(mut school) = schools.entry(self.school)
            && school.get().entry == self.entry
        {
            school.get_mut().streams -= 1;
            if school.get().streams == 0 {
                school.remove();
            }
        }
    }
}

/// The school's task: a build after each change (spaced out) and at least every `board_refresh_secs`,
/// since ages on the board move on, until its last stream goes.
async fn run(
    state: web::Data<AppState>,
    school: Uuid,
    latest: watch::Sender<Option<Arc<Built>>>,
    started: Arc<AtomicU64>,
    mut changes: broadcast::Receiver<Uuid>,
    mut stopped: oneshot::Receiver<()>,
) {
    let refresh = Duration::from_secs(state.settings.board_refresh_secs.max(1));
    // Each stream builds its own first board: the first refresh is a whole period away.
    let mut last_start = Instant::now();
    let mut spacing = SETTLE;
    loop {
        let changed = tokio::select! {
            _ = &mut stopped => return,
            heard = heard(&mut changes, school) => if heard { true } else { return },
            () = tokio::time::sleep_until(last_start + refresh.max(spacing)) => false,
        };
        if changed {
            let at = (Instant::now() + SETTLE).max(last_start + spacing);
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::time::sleep_until(at) => {}
            }
            // Whatever else came meanwhile is in the board about to be built; what comes during the
            // build stays queued and brings another.
            while let Ok(_) | Err(TryRecvError::Lagged(_)) = changes.try_recv() {}
        }
        last_start = Instant::now();
        let generation = started.fetch_add(1, Ordering::SeqCst) + 1;
        let result = state.boards.build(&state, school).await;
        spacing = SETTLE.max(last_start.elapsed() * SPACING);
        latest.send_replace(Some(Arc::new(built(generation, result))));
    }
}

/// Wait for a change of `school` (or of every school, or so many that some were missed); `false` once no
/// change can come any more.
async fn heard(changes: &mut broadcast::Receiver<Uuid>, school: Uuid) -> bool {
    loop {
        match changes.recv().await {
            Ok(changed) if changed != school && changed != live::EVERY_SCHOOL => continue,
            Ok(_) | Err(RecvError::Lagged(_)) => return true,
            Err(RecvError::Closed) => return false,
        }
    }
}

fn built(generation: u64, result: Result<SchoolBoard, ApiError>) -> Built {
    match result.and_then(|board| Ok((frame(&board.responders_view())?, board))) {
        Ok((frame, board)) => Built { generation, board: Some(board), frame },
        Err(e) => {
            tracing::warn!(error = %e, "the live board could not be built");
            Built { generation, board: None, frame: failed(&e) }
        }
    }
}

/// `view` as one Server-Sent Event.
pub fn frame(view: &BoardView) -> Result<Bytes, ApiError> {
    let json = serde_json::to_string(view).map_err(|e| ApiError::Unexpected(e.into()))?;
    Ok(Bytes::from(format!("event: board\ndata: {json}\n\n")))
}

/// The database may be back by the next build; a comment keeps the connection open.
fn failed(e: &ApiError) -> Bytes {
    Bytes::from(format!(": the board could not be built: {}\n\n", e.body().code))
}
