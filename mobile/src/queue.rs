//! The offline queue: every action the worker takes (and every location ping) is stored here before
//! it is sent, replayed in the order it happened, and removed only when the server confirms it. An
//! event the server refuses (409/422) is dropped and shown to the worker; because the server refuses a
//! whole batch for one bad event, a refused batch is resent one event at a time to find it.

use std::future::Future;

use homeward_shared::Timestamp;
use homeward_shared::api::{ClientEvent, ClientEventKind, LocationPing, SessionView};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::platform::Storage;

pub const QUEUE_KEY: &str = "homeward.queue";
/// The server's limits per request.
pub const MAX_EVENTS_PER_BATCH: usize = 200;
pub const MAX_PINGS_PER_BATCH: usize = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum Queued {
    Event { session_id: Uuid, event: ClientEvent },
    Ping { session_id: Uuid, ping: LocationPing },
}

impl Queued {
    pub fn id(&self) -> Uuid {
        match self {
            Queued::Event { event, .. } => event.id,
            Queued::Ping { ping, .. } => ping.id,
        }
    }

    pub fn session_id(&self) -> Uuid {
        match self {
            Queued::Event { session_id, .. } | Queued::Ping { session_id, .. } => *session_id,
        }
    }

    fn is_event(&self) -> bool {
        matches!(self, Queued::Event { .. })
    }
}

/// An action the server refused, kept until the worker has seen it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub id: Uuid,
    pub session_id: Uuid,
    pub at: Timestamp,
    /// What the worker did, e.g. "Check-in".
    pub what: String,
    /// The kind of event, e.g. `check_in`, so screens can react to a refused end or panic.
    pub kind: String,
    pub message: String,
}

/// What one request carries: consecutive items of one kind for one session.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    Events { session_id: Uuid, events: Vec<ClientEvent> },
    Pings { session_id: Uuid, pings: Vec<LocationPing> },
}

impl Batch {
    pub fn ids(&self) -> Vec<Uuid> {
        match self {
            Batch::Events { events, .. } => events.iter().map(|e| e.id).collect(),
            Batch::Pings { pings, .. } => pings.iter().map(|p| p.id).collect(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Batch::Events { events, .. } => events.len(),
            Batch::Pings { pings, .. } => pings.len(),
        }
    }
}

/// How the server answered a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum SendResult {
    /// Stored (or already stored: duplicates count as confirmed). `session` is the server's view after it.
    Confirmed { ids: Vec<Uuid>, session: Option<Box<SessionView>> },
    /// The server refused the batch as a whole (409/422 and other client errors).
    Refused { message: String },
    /// Not now: no connection, or the server is unavailable. Try again later.
    Retry { reason: String, offline: bool },
    /// The sign-in has expired; nothing is dropped.
    SignedOut,
}

/// Whether to carry on flushing after settling a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    Stop,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    items: Vec<Queued>,
    /// After a refused batch, items up to and including this one go one at a time.
    #[serde(default)]
    one_by_one_through: Option<Uuid>,
    #[serde(default)]
    rejected: Vec<Rejection>,
}

impl Queue {
    /// The queue as it was saved. Unreadable contents are kept aside under another key, never silently lost.
    pub fn load(storage: &dyn Storage) -> Self {
        let Some(text) = storage.get(QUEUE_KEY) else { return Self::default() };
        match serde_json::from_str(&text) {
            Ok(queue) => queue,
            Err(_) => {
                let _ = storage.set(&format!("{QUEUE_KEY}.unreadable"), &text);
                Self::default()
            }
        }
    }

    pub fn save(&self, storage: &dyn Storage) -> Result<(), String> {
        let text = serde_json::to_string(self).map_err(|e| e.to_string())?;
        storage.set(QUEUE_KEY, &text)
    }

    /// Add an item at the end. An id already waiting is not added twice.
    pub fn push(&mut self, item: Queued) -> bool {
        if self.contains(item.id()) {
            return false;
        }
        self.items.push(item);
        true
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    #[cfg(test)]
    pub fn items(&self) -> &[Queued] {
        &self.items
    }

    pub fn contains(&self, id: Uuid) -> bool {
        self.items.iter().any(|i| i.id() == id)
    }

    /// The events still waiting for one session, in the order they were taken.
    pub fn events_for(&self, session_id: Uuid) -> Vec<&ClientEvent> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Queued::Event { session_id: s, event } if *s == session_id => Some(event),
                _ => None,
            })
            .collect()
    }

    pub fn rejected(&self) -> &[Rejection] {
        &self.rejected
    }

    pub fn rejection(&self, id: Uuid) -> Option<&Rejection> {
        self.rejected.iter().find(|r| r.id == id)
    }

    pub fn dismiss(&mut self, id: Uuid) {
        self.rejected.retain(|r| r.id != id);
    }

    /// The next request to make: the longest run of same-kind items for one session at the front,
    /// or a single item while a refused batch is being picked apart.
    pub fn next_batch(&self) -> Option<Batch> {
        let first = self.items.first()?;
        let splitting = self.one_by_one_through.is_some_and(|id| self.contains(id));
        let limit = match (splitting, first.is_event()) {
            (true, _) => 1,
            (false, true) => MAX_EVENTS_PER_BATCH,
            (false, false) => MAX_PINGS_PER_BATCH,
        };
        let session_id = first.session_id();
        let run = self
            .items
            .iter()
            .take_while(|i| i.session_id() == session_id && i.is_event() == first.is_event())
            .take(limit);
        Some(if first.is_event() {
            let events = run
                .filter_map(|i| match i {
                    Queued::Event { event, .. } => Some(event.clone()),
                    Queued::Ping { .. } => None,
                })
                .collect();
            Batch::Events { session_id, events }
        } else {
            let pings = run
                .filter_map(|i| match i {
                    Queued::Ping { ping, .. } => Some(ping.clone()),
                    Queued::Event { .. } => None,
                })
                .collect();
            Batch::Pings { session_id, pings }
        })
    }

    /// Record the server's answer to `batch`.
    pub fn settle(&mut self, batch: &Batch, result: &SendResult) -> Step {
        let step = match result {
            SendResult::Confirmed { ids, .. } => {
                let before = self.items.len();
                self.items.retain(|i| !ids.contains(&i.id()));
                // A confirmation that removes nothing would make the same request again at once.
                if self.items.len() == before { Step::Stop } else { Step::Continue }
            }
            SendResult::Refused { .. } if batch.len() > 1 => {
                self.one_by_one_through = batch.ids().last().copied();
                Step::Continue
            }
            SendResult::Refused { message } => {
                for id in batch.ids() {
                    if let Some(index) = self.items.iter().position(|i| i.id() == id) {
                        let item = self.items.remove(index);
                        if let Queued::Event { session_id, event } = item {
                            self.rejected.push(Rejection {
                                id,
                                session_id,
                                at: event.at,
                                what: describe(&event.kind).into(),
                                kind: kind_name(&event.kind).into(),
                                message: message.clone(),
                            });
                        }
                    }
                }
                Step::Continue
            }
            SendResult::Retry { .. } | SendResult::SignedOut => Step::Stop,
        };
        if self.one_by_one_through.is_some_and(|id| !self.contains(id)) {
            self.one_by_one_through = None;
        }
        step
    }

    /// Forget everything (signing out with nothing left to send, or on the worker's explicit choice).
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

/// The event in words, for the worker.
pub fn describe(kind: &ClientEventKind) -> &'static str {
    match kind {
        ClientEventKind::Start { .. } => "Start of the visit",
        ClientEventKind::CheckIn => "Check-in",
        ClientEventKind::Extend { .. } => "Extension",
        ClientEventKind::End => "End of the visit",
        ClientEventKind::EndWithPin { .. } => "End of the visit",
        ClientEventKind::Panic { .. } => "Panic alarm",
        ClientEventKind::Outcome { .. } => "Outcome form",
    }
}

pub fn kind_name(kind: &ClientEventKind) -> &'static str {
    match kind {
        ClientEventKind::Start { .. } => "start",
        ClientEventKind::CheckIn => "check_in",
        ClientEventKind::Extend { .. } => "extend",
        ClientEventKind::End => "end",
        ClientEventKind::EndWithPin { .. } => "end_with_pin",
        ClientEventKind::Panic { .. } => "panic",
        ClientEventKind::Outcome { .. } => "outcome",
    }
}

/// Sends one batch to the server.
pub trait Sender {
    fn send(&self, batch: &Batch) -> impl Future<Output = SendResult>;
}

/// Shared access to the queue while a flush awaits the network; implementations save after each change.
pub trait QueueCell {
    fn update<R>(&self, f: impl FnOnce(&mut Queue) -> R) -> R;
}

#[derive(Debug, Clone, PartialEq)]
pub enum FlushEnd {
    /// Nothing left to send.
    Drained,
    Retry {
        reason: String,
        offline: bool,
    },
    SignedOut,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FlushReport {
    pub end: FlushEnd,
    pub confirmed: usize,
    pub refused: usize,
}

/// Send everything waiting, in order, until the queue is empty or the server cannot take more now.
/// `on_session` hears the server's view of a session after each batch it confirms, before the batch
/// leaves the queue, so what the phone shows never falls back to an older state in between.
pub async fn flush(
    cell: &impl QueueCell,
    sender: &impl Sender,
    mut on_session: impl FnMut(SessionView),
) -> FlushReport {
    let mut report = FlushReport { end: FlushEnd::Drained, confirmed: 0, refused: 0 };
    while let Some(batch) = cell.update(|q| q.next_batch()) {
        let result = sender.send(&batch).await;
        match &result {
            SendResult::Confirmed { ids, session } => {
                report.confirmed += ids.len();
                if let Some(session) = session {
                    on_session((**session).clone());
                }
            }
            SendResult::Refused { .. } if batch.len() == 1 => report.refused += 1,
            SendResult::Refused { .. } => {}
            SendResult::Retry { reason, offline } => {
                report.end = FlushEnd::Retry { reason: reason.clone(), offline: *offline };
            }
            SendResult::SignedOut => report.end = FlushEnd::SignedOut,
        }
        if cell.update(|q| q.settle(&batch, &result)) == Step::Stop {
            if report.end == FlushEnd::Drained {
                report.end =
                    FlushEnd::Retry { reason: "the server did not confirm every event".into(), offline: false };
            }
            break;
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashSet;

    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::platform::MemoryStorage;

    fn t(minutes: i64) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn event(n: u128, minutes: i64, kind: ClientEventKind) -> Queued {
        Queued::Event {
            session_id: Uuid::from_u128(1000),
            event: ClientEvent { id: Uuid::from_u128(n), at: t(minutes), kind },
        }
    }

    fn ping(n: u128, minutes: i64) -> Queued {
        Queued::Ping {
            session_id: Uuid::from_u128(1000),
            ping: LocationPing {
                id: Uuid::from_u128(n),
                at: t(minutes),
                latitude: 51.5,
                longitude: -0.1,
                accuracy_m: 12.0,
                battery_percent: Some(80),
            },
        }
    }

    /// The queue as the app holds it: saved to storage after every change.
    struct Saved {
        queue: RefCell<Queue>,
        storage: MemoryStorage,
    }

    impl QueueCell for Saved {
        fn update<R>(&self, f: impl FnOnce(&mut Queue) -> R) -> R {
            let mut queue = self.queue.borrow_mut();
            let result = f(&mut queue);
            queue.save(&self.storage).unwrap();
            result
        }
    }

    fn saved(items: Vec<Queued>) -> Saved {
        let mut queue = Queue::default();
        for item in items {
            assert!(queue.push(item));
        }
        Saved { queue: RefCell::new(queue), storage: MemoryStorage::default() }
    }

    /// A fake server: answers each batch with `answer`, remembering what it stored so replays are duplicates.
    struct FakeServer<F: Fn(&Batch) -> Option<SendResult>> {
        answer: F,
        requests: RefCell<Vec<Vec<Uuid>>>,
        stored: RefCell<Vec<Uuid>>,
    }

    impl<F: Fn(&Batch) -> Option<SendResult>> FakeServer<F> {
        fn new(answer: F) -> Self {
            Self { answer, requests: RefCell::new(vec![]), stored: RefCell::new(vec![]) }
        }
    }

    impl<F: Fn(&Batch) -> Option<SendResult>> Sender for FakeServer<F> {
        fn send(&self, batch: &Batch) -> impl Future<Output = SendResult> {
            self.requests.borrow_mut().push(batch.ids());
            let result = (self.answer)(batch).unwrap_or_else(|| {
                let mut stored = self.stored.borrow_mut();
                for id in batch.ids() {
                    if !stored.contains(&id) {
                        stored.push(id);
                    }
                }
                SendResult::Confirmed { ids: batch.ids(), session: None }
            });
            async move { result }
        }
    }

    fn ids(ns: &[u128]) -> Vec<Uuid> {
        ns.iter().map(|n| Uuid::from_u128(*n)).collect()
    }

    #[test]
    fn persists_and_reloads_in_order() {
        let storage = MemoryStorage::default();
        let mut queue = Queue::default();
        queue.push(event(1, 0, ClientEventKind::Start { location: None }));
        queue.push(ping(2, 1));
        queue.push(event(3, 2, ClientEventKind::CheckIn));
        queue.push(event(4, 3, ClientEventKind::EndWithPin { pin: "1234".into() }));
        queue.save(&storage).unwrap();
        let reloaded = Queue::load(&storage);
        assert_eq!(reloaded, queue);
        assert_eq!(reloaded.items().iter().map(Queued::id).collect::<Vec<_>>(), ids(&[1, 2, 3, 4]));
    }

    #[test]
    fn unreadable_storage_is_kept_aside_not_lost() {
        let storage = MemoryStorage::default();
        storage.set(QUEUE_KEY, "{not json").unwrap();
        assert!(Queue::load(&storage).is_empty());
        assert_eq!(storage.get("homeward.queue.unreadable").as_deref(), Some("{not json"));
    }

    #[test]
    fn the_same_event_is_never_queued_twice() {
        let mut queue = Queue::default();
        assert!(queue.push(event(1, 0, ClientEventKind::CheckIn)));
        assert!(!queue.push(event(1, 0, ClientEventKind::CheckIn)));
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn replays_in_the_order_taken_batching_runs_of_one_kind() {
        let cell = saved(vec![
            event(1, 0, ClientEventKind::Start { location: None }),
            event(2, 1, ClientEventKind::CheckIn),
            ping(3, 2),
            ping(4, 3),
            event(5, 4, ClientEventKind::Extend { minutes: 15 }),
        ]);
        let server = FakeServer::new(|_| None);
        let report = futures::executor::block_on(flush(&cell, &server, |_| {}));
        assert_eq!(report.end, FlushEnd::Drained);
        assert_eq!(report.confirmed, 5);
        assert_eq!(*server.requests.borrow(), vec![ids(&[1, 2]), ids(&[3, 4]), ids(&[5])]);
        assert!(cell.queue.borrow().is_empty());
        assert!(Queue::load(&cell.storage).is_empty(), "the emptied queue is saved");
    }

    #[test]
    fn offline_keeps_everything_and_a_later_flush_sends_it_once() {
        let cell = saved(vec![event(1, 0, ClientEventKind::CheckIn), event(2, 1, ClientEventKind::CheckIn)]);
        let offline = FakeServer::new(|_| Some(SendResult::Retry { reason: "offline".into(), offline: true }));
        let report = futures::executor::block_on(flush(&cell, &offline, |_| {}));
        assert_eq!(report.end, FlushEnd::Retry { reason: "offline".into(), offline: true });
        assert_eq!(Queue::load(&cell.storage).len(), 2, "still saved after the failed attempt");

        let online = FakeServer::new(|_| None);
        futures::executor::block_on(flush(&cell, &online, |_| {}));
        futures::executor::block_on(flush(&cell, &online, |_| {}));
        assert_eq!(*online.requests.borrow(), vec![ids(&[1, 2])], "sent once, nothing left to resend");
        assert_eq!(*online.stored.borrow(), ids(&[1, 2]));
    }

    #[test]
    fn only_confirmed_ids_leave_the_queue() {
        let cell = saved(vec![event(1, 0, ClientEventKind::CheckIn), event(2, 1, ClientEventKind::CheckIn)]);
        // The server lists one as applied and one as a duplicate: both are confirmed.
        let server = FakeServer::new(|_| Some(SendResult::Confirmed { ids: ids(&[1, 2]), session: None }));
        futures::executor::block_on(flush(&cell, &server, |_| {}));
        assert!(cell.queue.borrow().is_empty());

        // An answer that leaves an id out keeps it, and stops rather than asking again at once.
        let cell = saved(vec![event(1, 0, ClientEventKind::CheckIn), event(2, 1, ClientEventKind::CheckIn)]);
        let partial = FakeServer::new(|_| Some(SendResult::Confirmed { ids: ids(&[1]), session: None }));
        let report = futures::executor::block_on(flush(&cell, &partial, |_| {}));
        assert!(matches!(report.end, FlushEnd::Retry { .. }));
        assert_eq!(cell.queue.borrow().items().iter().map(Queued::id).collect::<Vec<_>>(), ids(&[2]));
        let stalled = FakeServer::new(|_| Some(SendResult::Confirmed { ids: vec![], session: None }));
        futures::executor::block_on(flush(&cell, &stalled, |_| {}));
        assert_eq!(stalled.requests.borrow().len(), 1);
    }

    #[test]
    fn a_refused_batch_is_resent_one_by_one_and_only_the_bad_event_is_dropped() {
        let cell = saved(vec![
            event(1, 0, ClientEventKind::CheckIn),
            event(2, 1, ClientEventKind::Extend { minutes: 500 }),
            event(3, 2, ClientEventKind::CheckIn),
            event(4, 3, ClientEventKind::CheckIn),
        ]);
        let bad = Uuid::from_u128(2);
        let server = FakeServer::new(move |batch| {
            batch.ids().contains(&bad).then(|| SendResult::Refused { message: "the extension must be 1 to 120".into() })
        });
        let report = futures::executor::block_on(flush(&cell, &server, |_| {}));
        assert_eq!(report.end, FlushEnd::Drained);
        assert_eq!(report.refused, 1);
        assert_eq!(
            *server.requests.borrow(),
            vec![ids(&[1, 2, 3, 4]), ids(&[1]), ids(&[2]), ids(&[3]), ids(&[4])],
            "one by one through the refused batch, in order"
        );
        assert_eq!(*server.stored.borrow(), ids(&[1, 3, 4]));
        let queue = cell.queue.borrow();
        assert!(queue.is_empty());
        let rejection = queue.rejection(bad).expect("the worker is told");
        assert_eq!(rejection.what, "Extension");
        assert_eq!(rejection.kind, "extend");
        assert!(rejection.message.contains("1 to 120"));
        assert_eq!(Queue::load(&cell.storage).rejected().len(), 1, "the notice survives a restart");
    }

    #[test]
    fn after_the_refused_run_batching_resumes() {
        let cell = saved(vec![event(1, 0, ClientEventKind::CheckIn), event(2, 1, ClientEventKind::CheckIn)]);
        let server = FakeServer::new(|batch| {
            (batch.len() > 1 && batch.ids().contains(&Uuid::from_u128(1)))
                .then(|| SendResult::Refused { message: "no".into() })
        });
        futures::executor::block_on(async {
            // Only the first request is refused; then two singles go through.
            flush(&cell, &server, |_| {}).await;
        });
        assert_eq!(*server.requests.borrow(), vec![ids(&[1, 2]), ids(&[1]), ids(&[2])]);
        cell.update(|q| {
            q.push(event(5, 5, ClientEventKind::CheckIn));
            q.push(event(6, 6, ClientEventKind::CheckIn));
        });
        assert_eq!(cell.update(|q| q.next_batch()).unwrap().ids(), ids(&[5, 6]));
    }

    #[test]
    fn an_expired_sign_in_keeps_the_queue() {
        let cell = saved(vec![event(1, 0, ClientEventKind::Panic { location: None })]);
        let server = FakeServer::new(|_| Some(SendResult::SignedOut));
        let report = futures::executor::block_on(flush(&cell, &server, |_| {}));
        assert_eq!(report.end, FlushEnd::SignedOut);
        assert_eq!(cell.queue.borrow().len(), 1);
    }

    #[test]
    fn batches_respect_the_server_limits_and_sessions() {
        let mut queue = Queue::default();
        for n in 0..(MAX_EVENTS_PER_BATCH as u128 + 5) {
            queue.push(event(n + 1, 0, ClientEventKind::CheckIn));
        }
        assert_eq!(queue.next_batch().unwrap().len(), MAX_EVENTS_PER_BATCH);

        let mut queue = Queue::default();
        queue.push(event(1, 0, ClientEventKind::CheckIn));
        queue.push(Queued::Event {
            session_id: Uuid::from_u128(2000),
            event: ClientEvent { id: Uuid::from_u128(2), at: t(0), kind: ClientEventKind::CheckIn },
        });
        assert_eq!(queue.next_batch().unwrap().ids(), ids(&[1]));
    }

    #[test]
    fn refused_pings_are_dropped_without_a_notice() {
        let cell = saved(vec![ping(1, 0)]);
        let server = FakeServer::new(|_| Some(SendResult::Refused { message: "outside the visit".into() }));
        futures::executor::block_on(flush(&cell, &server, |_| {}));
        let queue = cell.queue.borrow();
        assert!(queue.is_empty());
        assert!(queue.rejected().is_empty());
    }

    #[test]
    fn no_event_is_sent_twice_across_many_flushes_with_flaky_connection() {
        let cell = saved((1..=20).map(|n| event(n, n as i64, ClientEventKind::CheckIn)).collect());
        let calls = RefCell::new(0);
        let server = FakeServer::new(|_| {
            *calls.borrow_mut() += 1;
            (*calls.borrow() % 2 == 1).then(|| SendResult::Retry { reason: "flaky".into(), offline: true })
        });
        for _ in 0..10 {
            futures::executor::block_on(flush(&cell, &server, |_| {}));
        }
        let stored = server.stored.borrow();
        assert_eq!(stored.len(), 20);
        assert_eq!(stored.iter().collect::<HashSet<_>>().len(), 20);
        assert_eq!(*stored, (1..=20).map(Uuid::from_u128).collect::<Vec<_>>());
    }
}
