//! The loop that empties the outbox: claim due deliveries, send them concurrently, record each
//! attempt, retry with backoff (honouring `Retry-After`), forget devices that are gone.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::outbox::{self, Claimed, DeliveryResult};
use super::{Address, Channels, Device, Message, SendOutcome};
use crate::Timestamp;
use crate::error::ApiError;
use crate::state::AppState;
use homeward_shared::escalation::Channel as ChannelKind;

/// After this many attempts a delivery is recorded as failed.
pub const MAX_ATTEMPTS: i64 = 10;

fn backoff(attempts: i64) -> chrono::Duration {
    // 1 s, 2 s, 4 s ... capped at 5 minutes.
    chrono::Duration::seconds(1i64 << attempts.clamp(0, 9)).min(chrono::Duration::minutes(5))
}

pub async fn run(state: Arc<AppState>, channels: Channels, poll: Duration) {
    loop {
        let wake = state.db.deliveries_changed.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        if let Err(e) = deliver_due(&state, &channels).await {
            tracing::error!(error = %e, "delivering notifications failed; retrying");
        }
        let now = state.clock.now();
        let sleep = match outbox::next_due(&state.db.pool).await {
            Ok(Some(due)) => (due - now).to_std().unwrap_or(Duration::ZERO).min(poll),
            _ => poll,
        };
        tokio::select! {
            _ = &mut wake => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Send everything due now; returns how many deliveries were attempted.
pub async fn deliver_due(state: &AppState, channels: &Channels) -> Result<usize, ApiError> {
    let mut attempted = 0;
    loop {
        let now = state.clock.now();
        let mut tx = state.db.begin().await?;
        let claimed = outbox::claim(&mut tx, now, 100).await?;
        tx.commit().await?;
        if claimed.is_empty() {
            return Ok(attempted);
        }
        attempted += claimed.len();
        // Record results as their sends return: a crash then repeats at most the messages in flight
        // at that instant, never a batch that was already accepted. Results that arrive together are
        // written in one transaction (one fsync on SQLite), which keeps up with a burst of alarms.
        let (results, mut returned) = tokio::sync::mpsc::unbounded_channel();
        let send_all = async move {
            join_all(claimed.into_iter().map(|delivery| {
                let results = results.clone();
                async move {
                    let outcome = send_one(channels, &delivery).await;
                    let _ = results.send((delivery, outcome, state.clock.now()));
                }
            }))
            .await;
        };
        let record_all = async {
            while let Some(first) = returned.recv().await {
                let mut ready = vec![first];
                while let Ok(more) = returned.try_recv() {
                    ready.push(more);
                }
                let results: Vec<_> = ready
                    .into_iter()
                    .map(|(delivery, outcome, at)| (to_result(&delivery, outcome, at), delivery, at))
                    .collect();
                // A message the push service accepted must be recorded as sent, or it is sent again when
                // its claim lapses: while this process lives, keep trying until the database is back.
                let mut waited = Duration::from_millis(100);
                while let Err(e) = record(state, &results).await {
                    tracing::error!(error = %e, "recording delivery results failed; retrying");
                    tokio::time::sleep(waited).await;
                    waited = (waited * 2).min(Duration::from_secs(5));
                }
            }
        };
        tokio::join!(send_all, record_all);
    }
}

async fn record(state: &AppState, results: &[(DeliveryResult, Claimed, Timestamp)]) -> Result<(), ApiError> {
    let mut tx = state.db.begin().await?;
    for (result, delivery, at) in results {
        outbox::record(&mut tx, delivery, result, *at).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn send_one(channels: &Channels, delivery: &Claimed) -> SendOutcome {
    let Some(kind) = ChannelKind::parse(&delivery.channel) else {
        return SendOutcome::Failed { status: None, error: format!("unknown channel `{}`", delivery.channel) };
    };
    let Some(channel) = channels.get(kind) else {
        return SendOutcome::Failed {
            status: None,
            error: format!("{} is no longer configured on this server", kind.as_str()),
        };
    };
    let to = match kind {
        ChannelKind::Push => {
            let (Some(endpoint), Some(p256dh), Some(auth)) = (&delivery.endpoint, &delivery.p256dh, &delivery.auth)
            else {
                return SendOutcome::Gone { status: 410 };
            };
            Address::Device(Device { endpoint: endpoint.clone(), p256dh: p256dh.clone(), auth: auth.clone() })
        }
        ChannelKind::Email | ChannelKind::Sms => {
            let Some(destination) = delivery.destination.clone() else {
                return SendOutcome::Failed { status: None, error: "no address to send to".into() };
            };
            if kind == ChannelKind::Email { Address::Email(destination) } else { Address::Phone(destination) }
        }
    };
    let payload = match serde_json::from_str(&delivery.payload) {
        Ok(p) => p,
        Err(e) => return SendOutcome::Failed { status: None, error: format!("the stored message is unreadable: {e}") },
    };
    let message = Message {
        payload,
        urgent: delivery.urgent,
        ttl_seconds: delivery.ttl_seconds.clamp(0, u32::MAX as i64) as u32,
        topic: delivery.topic.clone(),
    };
    channel.send(&to, &message).await
}

fn to_result(delivery: &Claimed, outcome: SendOutcome, now: Timestamp) -> DeliveryResult {
    match outcome {
        SendOutcome::Delivered { status } => {
            DeliveryResult { status: "sent", status_code: Some(status), error: None, next_attempt_at: None }
        }
        SendOutcome::Gone { status } => DeliveryResult {
            status: "gone",
            status_code: Some(status),
            error: Some("the device's subscription no longer exists; it has been removed".into()),
            next_attempt_at: None,
        },
        SendOutcome::Failed { status, error } => {
            DeliveryResult { status: "failed", status_code: status, error: Some(error), next_attempt_at: None }
        }
        SendOutcome::Retry { status, error, retry_after } => {
            if delivery.attempts + 1 >= MAX_ATTEMPTS {
                return DeliveryResult {
                    status: "failed",
                    status_code: status,
                    error: Some(format!("gave up: {error}")),
                    next_attempt_at: None,
                };
            }
            let mut wait = backoff(delivery.attempts);
            if let Some(after) = retry_after.and_then(|d| chrono::Duration::from_std(d).ok()) {
                wait = wait.max(after);
            }
            DeliveryResult {
                status: "pending",
                status_code: status,
                error: Some(error),
                next_attempt_at: Some(now + wait),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn claimed(attempts: i64) -> Claimed {
        Claimed {
            id: Uuid::new_v4(),
            channel: "push".into(),
            destination: None,
            reach_id: None,
            fallback: None,
            subscription_id: None,
            endpoint: None,
            p256dh: None,
            auth: None,
            payload: String::new(),
            urgent: true,
            ttl_seconds: 300,
            topic: "t".into(),
            attempts,
        }
    }

    fn retry(retry_after: Option<Duration>) -> SendOutcome {
        SendOutcome::Retry { status: Some(429), error: "busy".into(), retry_after }
    }

    #[test]
    fn retries_back_off_and_honour_retry_after() {
        let now = chrono::Utc::now();
        let first = to_result(&claimed(0), retry(None), now);
        assert_eq!((first.status, first.next_attempt_at), ("pending", Some(now + chrono::Duration::seconds(1))));
        let third = to_result(&claimed(2), retry(None), now);
        assert_eq!(third.next_attempt_at, Some(now + chrono::Duration::seconds(4)));
        // The service asked for two minutes: that is longer than the backoff, so it wins.
        let asked = to_result(&claimed(0), retry(Some(Duration::from_secs(120))), now);
        assert_eq!(asked.next_attempt_at, Some(now + chrono::Duration::seconds(120)));
        // Backoff is capped at five minutes.
        assert_eq!(backoff(20), chrono::Duration::minutes(5));
    }

    #[test]
    fn gives_up_after_the_last_attempt_and_forgets_gone_devices() {
        let now = chrono::Utc::now();
        assert_eq!(to_result(&claimed(MAX_ATTEMPTS - 1), retry(None), now).status, "failed");
        assert_eq!(to_result(&claimed(0), SendOutcome::Gone { status: 410 }, now).status, "gone");
        assert_eq!(to_result(&claimed(0), SendOutcome::Delivered { status: 201 }, now).status, "sent");
    }
}
