//! The app's state: one `Copy` struct of signals, provided as context by the root component. Every
//! change goes through [`AppState::dispatch`] with an [`Action`], so what can change, and what is saved
//! on the device when it does, is visible in one place.

use std::collections::BTreeMap;

use dioxus::prelude::*;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use homeward_shared::api::{ClientEvent, ClientEventKind, LocationPing, LoginResponse, SessionView, UserView};
use homeward_shared::client::SignIn;
use homeward_shared::{Role, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::Api;
use crate::platform::{BatteryLevel, Fix, Platform, Storage};
use crate::projection::{self, Projected};
use crate::queue::{Queue, QueueCell, Queued};

pub const AUTH_KEY: &str = "homeward.auth";
pub const SESSIONS_KEY: &str = "homeward.sessions";

/// The signed-in user and their device sign-in, kept across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Auth {
    #[serde(flatten)]
    pub sign_in: SignIn,
    pub user: UserView,
}

impl From<LoginResponse> for Auth {
    fn from(r: LoginResponse) -> Self {
        Self { sign_in: SignIn::from_response(&r, chrono::Utc::now()), user: r.user }
    }
}

impl Auth {
    /// Whether the sign-in still holds: its access token, or the device sign-in that renews it.
    pub fn usable(&self, now: Timestamp) -> bool {
        self.sign_in.access_expires_at > now
            || (self.sign_in.refresh_token.is_some() && self.sign_in.refresh_expires_at.is_some_and(|at| at > now))
    }

    pub fn is_leader(&self) -> bool {
        self.user.roles.iter().any(|r| matches!(r, Role::Leader | Role::Dsl))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Online,
    Offline,
}

impl Connection {
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Online => "online",
            Connection::Offline => "offline",
        }
    }
}

/// The sessions the phone last heard about from the server, kept so the app opens without a signal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionCache {
    pub sessions: BTreeMap<Uuid, SessionView>,
    /// The phone's own projection of each live session's planned end (see [`projection::state_from_view`]).
    #[serde(default)]
    pub planned_end_hints: BTreeMap<Uuid, Timestamp>,
    pub loaded_at: Option<Timestamp>,
}

impl SessionCache {
    pub fn projected(&self, id: Uuid, queue: &Queue) -> Option<Projected> {
        let view = self.sessions.get(&id)?;
        Some(projection::project(view, self.planned_end_hints.get(&id).copied(), &queue.events_for(id)))
    }

    fn remember_planned_end(&mut self, id: Uuid, queue: &Queue) {
        if let Some(planned_end) = self.projected(id, queue).and_then(|p| p.planned_end) {
            self.planned_end_hints.insert(id, planned_end);
        }
    }
}

/// A reading from the device, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading<T> {
    /// Deliberately not read (location is only used during a visit).
    Off(&'static str),
    Waiting,
    Available(T),
    Unavailable(String),
}

/// How sending the queue is going.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncStatus {
    pub sending: bool,
    /// The last attempt failed; the queue will be tried again shortly.
    pub failing: bool,
    pub last_error: Option<String>,
}

/// Every change to the app's state.
#[derive(Debug, Clone, PartialEq)]
// Actions are made and consumed at once, never stored: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    SignedIn(Auth),
    UserRefreshed(UserView),
    /// The device sign-in was renewed (or a renewal is under way): saved so a restart keeps it.
    Renewed(SignIn),
    /// The worker signed out; `discard_queue` only when they chose to drop what was not sent.
    SignedOut {
        discard_queue: bool,
    },
    /// The server no longer accepts the token: sign in again, keeping everything queued.
    SignInExpired,
    Record {
        session_id: Uuid,
        event: ClientEvent,
    },
    Ping {
        session_id: Uuid,
        ping: LocationPing,
    },
    SessionsLoaded(Vec<SessionView>),
    SessionUpdated(SessionView),
    /// The server's view after it confirmed queued events: newer than any read still in flight.
    Confirmed(SessionView),
    Connection(Connection),
    Location(Reading<Fix>),
    Battery(Reading<BatteryLevel>),
    Sync(SyncStatus),
    DismissRejection(Uuid),
    Tick(Timestamp),
}

#[derive(Clone, Copy)]
pub struct AppState {
    platform: CopyValue<Platform>,
    wake: CopyValue<UnboundedSender<()>>,
    wake_receiver: CopyValue<Option<UnboundedReceiver<()>>>,
    /// The one API client of the signed-in device, shared by every request so that one renewal of
    /// the sign-in serves them all.
    api: CopyValue<Api>,
    renewals: CopyValue<UnboundedSender<SignIn>>,
    renewals_receiver: CopyValue<Option<UnboundedReceiver<SignIn>>>,
    pub auth: Signal<Option<Auth>>,
    /// A message for the worker that is not tied to one screen (sign-in expired, storage failing).
    pub notice: Signal<Option<String>>,
    pub connection: Signal<Connection>,
    pub queue: Signal<Queue>,
    pub sessions: Signal<SessionCache>,
    pub location: Signal<Reading<Fix>>,
    pub battery: Signal<Reading<BatteryLevel>>,
    pub sync: Signal<SyncStatus>,
    /// The clock, ticking every second, so countdowns run with or without a connection.
    pub now: Signal<Timestamp>,
    /// How many times the server has confirmed queued events: a read that started before the latest
    /// confirmation may be older than what the phone already shows, and is dropped.
    confirmations: CopyValue<u64>,
}

fn load<T: for<'de> Deserialize<'de>>(storage: &dyn Storage, key: &str) -> Option<T> {
    serde_json::from_str(&storage.get(key)?).ok()
}

impl AppState {
    /// Everything as it was saved on this device. Must run inside a component (it creates signals).
    pub fn load(platform: Platform) -> Self {
        let storage = platform.storage.as_ref();
        let now = chrono::Utc::now();
        let auth: Option<Auth> = load::<Auth>(storage, AUTH_KEY).filter(|a| a.usable(now));
        let sessions: SessionCache =
            if auth.is_some() { load(storage, SESSIONS_KEY).unwrap_or_default() } else { SessionCache::default() };
        let queue = Queue::load(storage);
        let online = platform.network.online();
        let notice = platform.storage_warning.clone();
        let (wake, wake_receiver) = unbounded();
        let (renewals, renewals_receiver) = unbounded();
        let api = signed_in_api(&platform.api_base, auth.as_ref(), &renewals);
        Self {
            platform: CopyValue::new(platform),
            wake: CopyValue::new(wake),
            wake_receiver: CopyValue::new(Some(wake_receiver)),
            api: CopyValue::new(api),
            renewals: CopyValue::new(renewals),
            renewals_receiver: CopyValue::new(Some(renewals_receiver)),
            auth: Signal::new(auth),
            notice: Signal::new(notice),
            connection: Signal::new(if online { Connection::Online } else { Connection::Offline }),
            queue: Signal::new(queue),
            sessions: Signal::new(sessions),
            location: Signal::new(Reading::Off(crate::tracking::LOCATION_OFF)),
            battery: Signal::new(Reading::Waiting),
            sync: Signal::new(SyncStatus::default()),
            now: Signal::new(now),
            confirmations: CopyValue::new(0),
        }
    }

    /// A mark to pass to [`AppState::still_fresh`] when a read of sessions starts.
    pub fn read_mark(&self) -> u64 {
        *self.confirmations.peek()
    }

    /// Whether a read that started at `mark` can still be shown: no confirmation has come since.
    pub fn still_fresh(&self, mark: u64) -> bool {
        *self.confirmations.peek() == mark
    }

    pub fn platform(&self) -> Platform {
        self.platform.read().clone()
    }

    /// The API as the signed-in user (or anonymous).
    pub fn api(&self) -> Api {
        self.api.read().clone()
    }

    /// Renewals of the sign-in, to be saved (taken once, by the sync loop).
    pub fn take_renewals(&mut self) -> Option<UnboundedReceiver<SignIn>> {
        self.renewals_receiver.write().take()
    }

    /// A new client for whoever is signed in now.
    fn rebuild_api(&mut self) {
        let api = signed_in_api(&self.platform.read().api_base, self.auth.peek().as_ref(), &self.renewals.read());
        self.api.set(api);
    }

    /// Ask the sender to try the queue now.
    pub fn wake_sync(&self) {
        let _ = self.wake.read().unbounded_send(());
    }

    /// The sender's end of the wake-up channel (taken once, by the sync loop).
    pub fn take_wake_receiver(&mut self) -> Option<UnboundedReceiver<()>> {
        self.wake_receiver.write().take()
    }

    /// Take an action: a new event with its own id and the time it happened, queued (and saved) before
    /// anything is sent. Returns the event's id.
    pub fn record(&mut self, session_id: Uuid, kind: ClientEventKind) -> Uuid {
        let event = ClientEvent { id: Uuid::new_v4(), at: chrono::Utc::now(), kind };
        let id = event.id;
        self.dispatch(Action::Record { session_id, event });
        id
    }

    /// A session as the phone shows it now (subscribes the caller to sessions and the queue).
    pub fn session(&self, id: Uuid) -> Option<(SessionView, Projected)> {
        let sessions = self.sessions.read();
        let view = sessions.sessions.get(&id)?.clone();
        let projected = sessions.projected(id, &self.queue.read())?;
        Some((view, projected))
    }

    /// The sessions under way now, as projected, without subscribing (for background loops).
    pub fn live_sessions(&self) -> Vec<(Uuid, Projected)> {
        let sessions = self.sessions.peek();
        let queue = self.queue.peek();
        sessions
            .sessions
            .keys()
            .filter_map(|id| sessions.projected(*id, &queue).map(|p| (*id, p)))
            .filter(|(_, p)| p.status.is_live() && !p.ended)
            .collect()
    }

    fn storage(&self) -> std::rc::Rc<dyn Storage> {
        self.platform.read().storage.clone()
    }

    fn saved(&mut self, result: Result<(), String>) {
        if let Err(why) = result {
            self.notice.set(Some(format!("This device could not save your data: {why}")));
        }
    }

    fn save_queue(&mut self) {
        let result = self.queue.peek().save(self.storage().as_ref());
        self.saved(result);
    }

    fn save_sessions(&mut self) {
        let text = serde_json::to_string(&*self.sessions.peek()).map_err(|e| e.to_string());
        let result = text.and_then(|t| self.storage().set(SESSIONS_KEY, &t));
        self.saved(result);
    }

    fn save_auth(&mut self) {
        let storage = self.storage();
        let result = match &*self.auth.peek() {
            Some(auth) => {
                serde_json::to_string(auth).map_err(|e| e.to_string()).and_then(|t| storage.set(AUTH_KEY, &t))
            }
            None => {
                storage.remove(AUTH_KEY);
                Ok(())
            }
        };
        self.saved(result);
    }

    /// The one place the state changes.
    pub fn dispatch(&mut self, action: Action) {
        match action {
            Action::SignedIn(auth) => {
                let same_user = self.auth.peek().as_ref().is_some_and(|a| a.user.id == auth.user.id);
                if !same_user {
                    self.sessions.set(SessionCache::default());
                    self.save_sessions();
                }
                self.auth.set(Some(auth));
                self.rebuild_api();
                self.notice.set(self.platform.read().storage_warning.clone());
                self.save_auth();
                self.wake_sync();
            }
            Action::UserRefreshed(user) => {
                if let Some(auth) = self.auth.write().as_mut() {
                    auth.user = user;
                }
                self.save_auth();
            }
            Action::Renewed(sign_in) => {
                // Only for the device still signed in (a renewal can finish after a sign-out).
                let current = self.auth.peek().as_ref().map(|a| a.sign_in.device_id);
                if current.is_some() && current == Some(sign_in.device_id) {
                    if let Some(auth) = self.auth.write().as_mut() {
                        auth.sign_in = sign_in;
                    }
                    self.save_auth();
                }
            }
            Action::SignedOut { discard_queue } => {
                self.auth.set(None);
                self.rebuild_api();
                self.sessions.set(SessionCache::default());
                if discard_queue {
                    self.queue.write().clear();
                    self.save_queue();
                }
                self.location.set(Reading::Off(crate::tracking::LOCATION_OFF));
                self.storage().remove(SESSIONS_KEY);
                self.save_auth();
            }
            Action::SignInExpired => {
                self.auth.set(None);
                self.rebuild_api();
                self.save_auth();
                let waiting = self.queue.peek().len();
                self.notice.set(Some(if waiting > 0 {
                    format!("Your sign-in has expired. Sign in again: {waiting} waiting to be sent will go then.")
                } else {
                    "Your sign-in has expired. Sign in again.".into()
                }));
            }
            Action::Record { session_id, event } => {
                self.queue.write().push(Queued::Event { session_id, event });
                self.save_queue();
                let queue = self.queue.peek().clone();
                self.sessions.write().remember_planned_end(session_id, &queue);
                self.save_sessions();
                self.wake_sync();
            }
            Action::Ping { session_id, ping } => {
                self.queue.write().push(Queued::Ping { session_id, ping });
                self.save_queue();
                self.wake_sync();
            }
            Action::SessionsLoaded(views) => {
                let queue = self.queue.peek().clone();
                let mut sessions = self.sessions.write();
                let keep: Vec<Uuid> = views.iter().map(|v| v.id).collect();
                sessions.sessions = views.into_iter().map(|v| (v.id, v)).collect();
                sessions.planned_end_hints.retain(|id, _| keep.contains(id));
                sessions.loaded_at = Some(chrono::Utc::now());
                for id in keep {
                    sessions.remember_planned_end(id, &queue);
                }
                drop(sessions);
                self.save_sessions();
            }
            Action::Confirmed(view) => {
                *self.confirmations.write() += 1;
                self.dispatch(Action::SessionUpdated(view));
            }
            Action::SessionUpdated(view) => {
                let queue = self.queue.peek().clone();
                let id = view.id;
                let mut sessions = self.sessions.write();
                sessions.sessions.insert(id, view);
                sessions.remember_planned_end(id, &queue);
                drop(sessions);
                self.save_sessions();
            }
            Action::Connection(connection) => {
                let before = *self.connection.peek();
                if before != connection {
                    self.connection.set(connection);
                    // Back online: send what is waiting now rather than at the next retry.
                    if connection == Connection::Online {
                        self.wake_sync();
                    }
                }
            }
            Action::Location(reading) => self.location.set(reading),
            Action::Battery(reading) => self.battery.set(reading),
            Action::Sync(status) => {
                if *self.sync.peek() != status {
                    self.sync.set(status);
                }
            }
            Action::DismissRejection(id) => {
                self.queue.write().dismiss(id);
                self.save_queue();
            }
            Action::Tick(now) => self.now.set(now),
        }
    }
}

/// The flush loop edits the queue between requests; each change is saved before the next request.
impl QueueCell for AppState {
    fn update<R>(&self, f: impl FnOnce(&mut Queue) -> R) -> R {
        let mut queue = self.queue;
        let (result, changed) = {
            let before = queue.peek().clone();
            let mut after = before.clone();
            let result = f(&mut after);
            let changed = after != before;
            if changed {
                queue.set(after);
            }
            (result, changed)
        };
        if changed {
            let mut state = *self;
            state.save_queue();
        }
        result
    }
}

/// The app state from context.
pub fn use_app() -> AppState {
    use_context::<AppState>()
}

/// The API client for `auth`, telling `renewals` of every change to its sign-in.
fn signed_in_api(base: &str, auth: Option<&Auth>, renewals: &UnboundedSender<SignIn>) -> Api {
    match auth {
        Some(auth) => {
            let renewals = renewals.clone();
            Api::signed_in(
                base,
                auth.sign_in.clone(),
                std::sync::Arc::new(move |sign_in: Option<&SignIn>| {
                    if let Some(sign_in) = sign_in {
                        let _ = renewals.unbounded_send(sign_in.clone());
                    }
                }),
            )
        }
        None => Api::new(base, None),
    }
}
