//! The loop that empties the outbox: claim due deliveries, send them concurrently, record each
//! attempt, retry with backoff (honouring `Retry-After`), forget devices that are gone. A device whose
//! push service refused a message gets nothing else until that message goes through; then what waited
//! goes out one message after another, in the order written.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::outbox::{self, Claimed, DeliveryResult};
use super::{Address, Channels, Device, Message, SendOutcome};
use crate::Timestamp;
use crate::error::ApiError;
use crate::state::AppState;
use homeward_shared::escalation::Channel as ChannelKind;

/// The longest wait between two tries (unless the service asks for longer with `Retry-After`): a
/// service that comes back is found within this, and everything waiting for it goes out then.
pub const MAX_BACKOFF: chrono::Duration = chrono::Duration::seconds(10);

/// A message still refused this long after it was written is recorded as failed.
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(1);

fn backoff(attempts: i64) -> chrono::Duration {
    // 1 s, 2 s, 4 s, 8 s, then every 10 s.
    chrono::Duration::seconds(1i64 << attempts.clamp(0, 4)).min(MAX_BACKOFF)
}

/// The shortest pause after a pass that found nothing it could claim.
const STUCK_PAUSE: Duration = Duration::from_millis(100);

pub async fn run(state: Arc<AppState>, channels: Channels, poll: Duration) {
    loop {
        let wake = state.db.deliveries_changed.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let attempted = match deliver_due(&state, &channels).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "delivering notifications failed; retrying");
                0
            }
        };
        let now = state.clock.now();
        let mut sleep = match outbox::next_due(state.db.alarms_pool()).await {
            Ok(Some(due)) => (due - now).to_std().unwrap_or(Duration::ZERO).min(poll),
            _ => poll,
        };
        if attempted == 0 {
            // Something is due that could not be claimed (another process holds it, or it was queued for
            // a device just as the device was held): look again shortly rather than spin.
            sleep = sleep.max(STUCK_PAUSE.min(poll));
        }
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
        let mut tx = state.db.begin_for_alarms().await?;
        let claimed = outbox::claim(&mut tx, now, 100).await?;
        tx.commit().await?;
        if claimed.is_empty() {
            return Ok(attempted);
        }
        attempted += claimed.len();
        // Record results as their sends return: a crash then repeats at most the messages in flight
        // at that instant, never a batch that was already accepted. Results that arrive together are
        // written in one transaction (one fsync on SQLite), which keeps up with a burst of alarms.
        let (results, mut returned) = tokio::sync::mpsc::unbounded_channel::<Vec<Recorded>>();
        let send_all = async move {
            join_all(in_sending_order(claimed).into_iter().map(|queue| {
                let results = results.clone();
                async move {
                    let mut queue = queue.into_iter();
                    while let Some(delivery) = queue.next() {
                        let outcome = send_one(channels, &delivery).await;
                        let at = state.clock.now();
                        let result = to_result(&delivery, outcome, at);
                        if result.status != "pending" {
                            let _ = results.send(vec![(result, delivery, at)]);
                            continue;
                        }
                        // Refused: what follows it to the same device waits behind it, unsent.
                        let mut refused = vec![(result, delivery, at)];
                        refused.extend(queue.by_ref().map(|later| (put_back(), later, at)));
                        let _ = results.send(refused);
                    }
                }
            }))
            .await;
        };
        let record_all = async {
            while let Some(first) = returned.recv().await {
                let mut results = first;
                while let Ok(more) = returned.try_recv() {
                    results.extend(more);
                }
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

type Recorded = (DeliveryResult, Claimed, Timestamp);

/// The claimed deliveries as queues, each sent one message after another: the messages released to a
/// device after a refusal share one queue, in the order written; every other message is a queue of its
/// own, so a burst of alarms goes out at once.
fn in_sending_order(claimed: Vec<Claimed>) -> Vec<Vec<Claimed>> {
    let mut queues: Vec<Vec<Claimed>> = Vec::with_capacity(claimed.len());
    let mut by_device: std::collections::HashMap<uuid::Uuid, usize> = std::collections::HashMap::new();
    for delivery in claimed {
        match delivery.subscription_id.filter(|_| delivery.in_order) {
            Some(device) => match by_device.get(&device) {
                Some(&queue) => queues[queue].push(delivery),
                None => {
                    by_device.insert(device, queues.len());
                    queues.push(vec![delivery]);
                }
            },
            None => queues.push(vec![delivery]),
        }
    }
    queues
}

fn put_back() -> DeliveryResult {
    DeliveryResult { status: outbox::PUT_BACK, status_code: None, error: None, next_attempt_at: None }
}

async fn record(state: &AppState, results: &[Recorded]) -> Result<(), ApiError> {
    let mut tx = state.db.begin_for_alarms().await?;
    let mut delivered = std::collections::BTreeMap::new();
    for (result, delivery, at) in results {
        outbox::record(&mut tx, delivery, result, *at).await?;
        if let (Some(device), "sent") = (delivery.subscription_id, result.status) {
            delivered.insert(device, *at);
        }
    }
    outbox::note_delivered(&mut tx, &delivered).await?;
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
            if now - delivery.created_at >= GIVE_UP_AFTER {
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
            created_at: chrono::Utc::now(),
            in_order: false,
            holds_device: false,
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
        // Backoff is capped, so a service that comes back is found soon.
        assert_eq!(backoff(3), chrono::Duration::seconds(8));
        assert_eq!(backoff(4), MAX_BACKOFF);
        assert_eq!(backoff(500), MAX_BACKOFF);
    }

    #[test]
    fn a_devices_released_messages_share_one_queue_in_order_and_the_rest_go_at_once() {
        let device = Uuid::new_v4();
        let released = |n: i64| Claimed { subscription_id: Some(device), in_order: true, ..claimed(n) };
        let other = Claimed { subscription_id: Some(Uuid::new_v4()), ..claimed(0) };
        let (first, second) = (released(1), released(0));
        let queues = in_sending_order(vec![first.clone(), other.clone(), second.clone(), claimed(0)]);
        let ids: Vec<Vec<Uuid>> = queues.iter().map(|q| q.iter().map(|d| d.id).collect()).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[0], vec![first.id, second.id]);
        assert_eq!(ids[1], vec![other.id]);
    }

    #[test]
    fn gives_up_an_hour_after_the_message_was_written_and_forgets_gone_devices() {
        let now = chrono::Utc::now();
        let written_long_ago = Claimed { created_at: now - GIVE_UP_AFTER, ..claimed(360) };
        assert_eq!(to_result(&written_long_ago, retry(None), now).status, "failed");
        let written_recently = Claimed { created_at: now - chrono::Duration::minutes(59), ..claimed(360) };
        assert_eq!(to_result(&written_recently, retry(None), now).status, "pending");
        assert_eq!(to_result(&claimed(0), SendOutcome::Gone { status: 410 }, now).status, "gone");
        assert_eq!(to_result(&claimed(0), SendOutcome::Delivered { status: 201 }, now).status, "sent");
    }
}
