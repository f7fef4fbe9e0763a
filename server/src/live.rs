//! Live updates: "something in school X changed", published after a write transaction that touched the
//! school commits, and heard by every live board of that school in this process.
//!
//! In-process only for now: a tokio broadcast channel. Several server processes on one PostgreSQL need
//! each other's changes too; that plugs in here without touching the writers: commit would also send
//! `pg_notify('homeward_school_changed', school_id)`, and one task per process would `LISTEN` on that
//! channel and call [`LiveChanges::publish`] for what it hears. Boards also refresh on a timer, so a
//! missed notification costs seconds, never a stale board.

use tokio::sync::broadcast;
use uuid::Uuid;

#[derive(Clone)]
pub struct LiveChanges {
    sender: broadcast::Sender<Uuid>,
}

impl Default for LiveChanges {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveChanges {
    pub fn new() -> Self {
        // A listener that falls this far behind is told it lagged and rebuilds its board at once.
        let (sender, _) = broadcast::channel(1024);
        Self { sender }
    }

    /// Tell every listener that `school` changed. Nobody listening is fine.
    pub fn publish(&self, school: Uuid) {
        let _ = self.sender.send(school);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.sender.subscribe()
    }
}
