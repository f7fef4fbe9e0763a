//! Live updates: "something in school X changed", published after a write transaction that touched the
//! school commits, and heard by every live board of that school.
//!
//! Within a process this is a tokio broadcast channel. Several server processes on one PostgreSQL hear
//! each other through `LISTEN`/`NOTIFY`: a transaction that touched a school also sends a notification
//! on [`CHANNEL`] (inside the transaction, so PostgreSQL delivers it only if the commit succeeds), and
//! [`listen`] runs in every process and republishes what the others sent. Notifications sent while a
//! listener is disconnected are lost, so after every (re)connect it publishes [`EVERY_SCHOOL`] and every
//! board rebuilds from the database. Boards also refresh on a timer, a last resort.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

/// The PostgreSQL notification channel; the payload is the sending process's id, then the schools.
pub const CHANNEL: &str = "homeward_school_changed";

/// Published when any school may have changed unheard (a listener reconnected): every board rebuilds.
pub const EVERY_SCHOOL: Uuid = Uuid::nil();

/// At most this many schools per notification, well inside PostgreSQL's 8000-byte payload limit.
pub const SCHOOLS_PER_NOTIFICATION: usize = 100;

/// How long new positions gather before other processes are told of them together.
pub const POSITIONS_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct LiveChanges {
    sender: broadcast::Sender<Uuid>,
    /// This process, so its listener can skip what it sent itself (already published locally).
    instance: Uuid,
    /// Schools with new positions, not yet told to other processes ([`tell_positions`]).
    positions: Arc<Mutex<BTreeSet<Uuid>>>,
    positions_waiting: Arc<Notify>,
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
        Self { sender, instance: Uuid::new_v4(), positions: Arc::default(), positions_waiting: Arc::new(Notify::new()) }
    }

    /// A committed write brought new positions for `school`: other processes are told within
    /// [`POSITIONS_EVERY`], together with the other schools' (this process's own boards are told at
    /// once with [`LiveChanges::publish`]).
    pub fn position_changed(&self, school: Uuid) {
        self.positions.lock().expect("the positions to tell").insert(school);
        self.positions_waiting.notify_one();
    }

    /// Tell every listener in this process that `school` changed. Nobody listening is fine.
    pub fn publish(&self, school: Uuid) {
        let _ = self.sender.send(school);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.sender.subscribe()
    }

    /// The payloads that tell other processes these schools changed.
    pub fn notifications<'a>(&self, schools: impl IntoIterator<Item = &'a Uuid>) -> Vec<String> {
        let schools: Vec<&Uuid> = schools.into_iter().collect();
        schools
            .chunks(SCHOOLS_PER_NOTIFICATION)
            .map(|chunk| {
                let mut payload = self.instance.to_string();
                for school in chunk {
                    payload.push(' ');
                    payload.push_str(&school.to_string());
                }
                payload
            })
            .collect()
    }

    /// Publish locally what another process's notification says changed; our own are skipped.
    pub fn heard(&self, payload: &str) {
        let mut words = payload.split(' ');
        let from_here = words.next().and_then(|w| w.parse::<Uuid>().ok()) == Some(self.instance);
        if from_here {
            return;
        }
        for school in words {
            match school.parse::<Uuid>() {
                Ok(school) => self.publish(school),
                // Unreadable: rebuilding every board is always correct.
                Err(_) => self.publish(EVERY_SCHOOL),
            }
        }
    }
}

/// Tell other processes of new positions, a few times a second at most (PostgreSQL). A notification
/// sent inside a transaction serialises the commits of every transaction that sends one (PostgreSQL
/// holds a lock on its notification queue through the commit), which at phones' rates would make every
/// ping's commit wait in line for the disk; a position is not worth that. So a ping's transaction sends
/// none, and this sends one for all the positions that came in meanwhile. Sent after the commit: a
/// process that dies in between leaves the others' boards a position behind until their refresh.
pub async fn tell_positions(pool: sqlx::AnyPool, live: LiveChanges) {
    loop {
        live.positions_waiting.notified().await;
        tokio::time::sleep(POSITIONS_EVERY).await;
        let schools = std::mem::take(&mut *live.positions.lock().expect("the positions to tell"));
        for payload in live.notifications(&schools) {
            let sent = sqlx::query("select pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(&pool).await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not tell other processes of new positions");
            }
        }
    }
}

/// Listen for other processes' changes until the process ends, reconnecting on its own.
pub async fn listen(url: String, live: LiveChanges) {
    let mut announced_loss = false;
    loop {
        match connect(&url).await {
            Ok(mut listener) => {
                announced_loss = false;
                tracing::info!("listening for other server processes' changes");
                // Whatever was sent before this connection existed is unheard: rebuild every board.
                live.publish(EVERY_SCHOOL);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => live.heard(notification.payload()),
                        // The connection dropped and was re-established: notifications in between are lost.
                        Ok(None) => {
                            tracing::warn!("the change listener reconnected; live boards rebuild");
                            live.publish(EVERY_SCHOOL);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the change listener lost the database; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) if !announced_loss => {
                tracing::warn!(error = %e, "cannot listen for other server processes' changes; retrying");
                announced_loss = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_process_s_notification_is_published_and_our_own_is_not() {
        let here = LiveChanges::new();
        let there = LiveChanges::new();
        let mut heard = here.subscribe();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());

        for payload in here.notifications(&[a]) {
            here.heard(&payload);
        }
        assert!(heard.try_recv().is_err(), "our own notification is not published twice");

        for payload in there.notifications(&[a, b]) {
            here.heard(&payload);
        }
        assert_eq!(heard.try_recv().ok(), Some(a));
        assert_eq!(heard.try_recv().ok(), Some(b));

        here.heard("garbage");
        assert_eq!(heard.try_recv().ok(), None, "a payload from nobody we know names no school");
        here.heard(&format!("{} not-a-school", Uuid::new_v4()));
        assert_eq!(heard.try_recv().ok(), Some(EVERY_SCHOOL), "unreadable: every board rebuilds");
    }

    #[test]
    fn many_schools_are_split_across_notifications_within_the_payload_limit() {
        let live = LiveChanges::new();
        let schools: Vec<Uuid> = (0..250).map(|_| Uuid::new_v4()).collect();
        let payloads = live.notifications(&schools);
        assert_eq!(payloads.len(), 3);
        assert!(payloads.iter().all(|p| p.len() < 8000));
        let named: usize = payloads.iter().map(|p| p.split(' ').count() - 1).sum();
        assert_eq!(named, 250);
    }
}
