//! The background work that keeps the phone and the server in step: the clock, the connection, and
//! sending the queue with backoff (at most 5 s between attempts) until the server has everything.

use std::time::Duration;

use dioxus::prelude::*;
use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, unbounded};

use crate::api::ApiError;
use crate::platform::{sleep, with_timeout};
use crate::queue::{self, FlushEnd};
use crate::state::{Action, AppState, Connection, SyncStatus};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(5);

/// Start the clock, the connection listener and the queue sender. Call once, in the root component.
pub fn use_sync(state: AppState) {
    use_future(move || async move {
        let mut state = state;
        loop {
            sleep(Duration::from_secs(1)).await;
            state.dispatch(Action::Tick(chrono::Utc::now()));
        }
    });

    use_future(move || async move {
        let mut state = state;
        // The browser's online/offline events arrive outside Dioxus; a channel brings them in.
        let (sender, mut changes) = unbounded::<bool>();
        state.platform().network.on_change(Box::new(move |online| {
            let _ = sender.unbounded_send(online);
        }));
        while let Some(online) = changes.next().await {
            state.dispatch(Action::Connection(if online { Connection::Online } else { Connection::Offline }));
        }
    });

    use_future(move || async move {
        let mut state = state;
        // The sign-in renews itself inside the API client; each renewal is saved on the device here.
        if let Some(mut renewals) = state.take_renewals() {
            while let Some(sign_in) = renewals.next().await {
                state.dispatch(Action::Renewed(sign_in));
            }
        }
    });

    use_future(move || async move {
        let mut state = state;
        refresh_user(&mut state).await;
        if let Some(wake) = state.take_wake_receiver() {
            send_forever(state, wake).await;
        }
    });
}

/// The user's details may have changed (a PIN set since the last sign-in).
async fn refresh_user(state: &mut AppState) {
    if state.auth.peek().is_none() {
        return;
    }
    match state.api().me().await {
        Ok(user) => state.dispatch(Action::UserRefreshed(user)),
        Err(ApiError::SignedOut(_)) => state.dispatch(Action::SignInExpired),
        Err(_) => {}
    }
}

/// Wait for a wake-up, or at most `timeout`; several wake-ups at once count as one.
async fn wait(wake: &mut UnboundedReceiver<()>, timeout: Option<Duration>) {
    match timeout {
        Some(timeout) => {
            with_timeout(timeout, wake.next()).await;
        }
        None => {
            wake.next().await;
        }
    }
    while wake.try_recv().is_ok() {}
}

async fn send_forever(mut state: AppState, mut wake: UnboundedReceiver<()>) {
    let mut backoff = FIRST_RETRY;
    loop {
        let signed_in = state.auth.peek().is_some();
        let waiting = !state.queue.peek().is_empty();
        if !signed_in {
            wait(&mut wake, None).await;
            continue;
        }
        if !waiting {
            // Nothing to send: while offline, look for the server every few seconds so the screen
            // knows when the connection is back.
            if *state.connection.peek() == Connection::Offline {
                wait(&mut wake, Some(LONGEST_RETRY)).await;
                if state.queue.peek().is_empty() && state.api().health().await.is_ok() {
                    state.dispatch(Action::Connection(Connection::Online));
                }
            } else {
                wait(&mut wake, None).await;
            }
            continue;
        }

        let failing = state.sync.peek().failing;
        state.dispatch(Action::Sync(SyncStatus { sending: true, failing, last_error: None }));
        let api = state.api();
        let mut updates = state;
        let report = queue::flush(&state, &api, |session| updates.dispatch(Action::Confirmed(session))).await;
        match report.end {
            FlushEnd::Drained => {
                backoff = FIRST_RETRY;
                state.dispatch(Action::Sync(SyncStatus::default()));
                state.dispatch(Action::Connection(Connection::Online));
            }
            FlushEnd::Retry { reason, offline } => {
                state.dispatch(Action::Sync(SyncStatus { sending: false, failing: true, last_error: Some(reason) }));
                state.dispatch(Action::Connection(if offline { Connection::Offline } else { Connection::Online }));
                wait(&mut wake, Some(backoff)).await;
                backoff = (backoff * 2).min(LONGEST_RETRY);
            }
            FlushEnd::SignedOut => {
                state.dispatch(Action::Sync(SyncStatus {
                    sending: false,
                    failing: true,
                    last_error: Some("sign in again to send".into()),
                }));
                state.dispatch(Action::SignInExpired);
            }
        }
    }
}

/// Note the outcome of a request the screens made themselves.
pub fn note_result<T>(state: &mut AppState, result: &Result<T, ApiError>) {
    match result {
        Ok(_) => state.dispatch(Action::Connection(Connection::Online)),
        Err(ApiError::Offline(_)) => state.dispatch(Action::Connection(Connection::Offline)),
        Err(ApiError::SignedOut(_)) => state.dispatch(Action::SignInExpired),
        Err(_) => state.dispatch(Action::Connection(Connection::Online)),
    }
}
