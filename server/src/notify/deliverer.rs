//! The loop that empties the outbox: claim due deliveries, send them concurrently (but a device's
//! messages behind a retry one after another, in the order written), record each attempt, retry with
//! backoff (honouring `Retry-After`) for an hour, forget devices that are gone.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::outbox::{self, Claimed, DeliveryResult};
use super::{Address, Channels, Device, Message, SendOutcome};
use crate::Timestamp;
use crate::error::ApiError;
use crate::state::AppState;
use homeward_shared::escalation::Channel as ChannelKind;

/// A delivery is retried until this long after it was written, then recorded as failed. Giving up
/// by time rather than by a count of attempts means an outage of the push service shorter than this
/// can never use a message up, however often it was tried meanwhile. An hour outlasts any outage a
/// push service has had in practice; an alarm still open after that keeps its repeats coming to
/// every leader, each a new message with an hour of its own.
pub const RETRY_FOR: chrono::Duration = chrono::Duration::hours(1);

/// The longest wait between two tries of a message, unless the service asks for longer
/// (`Retry-After`). Short, because an alarm should go out within seconds of its push service coming
/// back: the first retry that succeeds brings every message waiting for that service forward, so
/// the backlog goes out at most this long (plus sending) after the return. Cheap, because only the
/// oldest undelivered message of each device is retried (the rest wait behind it in order): six
/// requests a minute per device while a service is down.
pub const MAX_BACKOFF: chrono::Duration = chrono::Duration::seconds(10);

fn backoff(attempts: i64) -> chrono::Duration {
    // 1 s, 2 s, 4 s ... capped.
    chrono::Duration::seconds(1i64 << attempts.clamp(0, 9)).min(MAX_BACKOFF)
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
        // A device's messages must be sent well inside the claim, or another process could take the
        // later ones while this one still holds the earlier: what is left by then is given back.
        let send_by = now + chrono::Duration::seconds(outbox::LEASE_SECONDS / 2);
        let send_all = async move {
            join_all(by_device(claimed).into_iter().map(|queue| {
                let results = results.clone();
                async move {
                    // Behind a retry, one device's messages go one after another, in the order
                    // written, and once one must be retried again the rest wait behind it untried.
                    // Messages on their first try go out together.
                    if !queue.iter().any(|d| d.attempts > 0 || d.held) {
                        join_all(queue.into_iter().map(|delivery| {
                            let results = results.clone();
                            async move {
                                let outcome = send_one(channels, &delivery).await;
                                let _ = results.send((delivery, Some(outcome), state.clock.now()));
                            }
                        }))
                        .await;
                        return;
                    }
                    let mut queue = queue.into_iter();
                    while let Some(delivery) = queue.next() {
                        if state.clock.now() > send_by {
                            for untried in std::iter::once(delivery).chain(queue.by_ref()) {
                                let _ = results.send((untried, None, state.clock.now()));
                            }
                            break;
                        }
                        let outcome = send_one(channels, &delivery).await;
                        let retry = matches!(outcome, SendOutcome::Retry { .. });
                        let _ = results.send((delivery, Some(outcome), state.clock.now()));
                        if retry {
                            for untried in queue.by_ref() {
                                let _ = results.send((untried, None, state.clock.now()));
                            }
                        }
                    }
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
                // (result, delivery, when); `None`: given back untried, behind a retry.
                let results: Vec<_> = ready
                    .into_iter()
                    .map(|(delivery, outcome, at)| (outcome.map(|o| to_result(&delivery, o, at)), delivery, at))
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

async fn record(state: &AppState, results: &[(Option<DeliveryResult>, Claimed, Timestamp)]) -> Result<(), ApiError> {
    let mut tx = state.db.begin().await?;
    for (result, delivery, at) in results {
        match result {
            Some(result) => outbox::record(&mut tx, delivery, result, *at).await?,
            None => outbox::release(&mut tx, delivery).await?,
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Claimed deliveries grouped by device, each group in the order claimed (the order written).
fn by_device(claimed: Vec<Claimed>) -> Vec<Vec<Claimed>> {
    let mut queues: Vec<((String, String), Vec<Claimed>)> = Vec::new();
    for delivery in claimed {
        let queue = outbox::queue_of(&delivery);
        match queues.iter_mut().find(|(q, _)| *q == queue) {
            Some((_, deliveries)) => deliveries.push(delivery),
            None => queues.push((queue, vec![delivery])),
        }
    }
    queues.into_iter().map(|(_, deliveries)| deliveries).collect()
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
            if now - delivery.created_at >= RETRY_FOR {
                return DeliveryResult {
                    status: "failed",
                    status_code: status,
                    error: Some(format!(
                        "gave up after {} minutes and {} attempts: {error}",
                        RETRY_FOR.num_minutes(),
                        delivery.attempts + 1
                    )),
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
        claimed_at(attempts, chrono::Utc::now())
    }

    fn claimed_at(attempts: i64, created_at: Timestamp) -> Claimed {
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
            created_at,
            held: false,
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
        // Backoff is capped at ten seconds.
        assert_eq!(backoff(3), chrono::Duration::seconds(8));
        assert_eq!(backoff(4), chrono::Duration::seconds(10));
        assert_eq!(backoff(20), MAX_BACKOFF);
    }

    /// Play a push service that answers 503 until `outage` has passed, against the retry policy on a
    /// hand-moved clock: returns the attempts made, when the message got through, and the result.
    fn through_an_outage(outage: chrono::Duration) -> (i64, chrono::Duration, &'static str) {
        let written = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut now = written;
        let mut attempts = 0;
        loop {
            let up = now - written >= outage;
            let outcome = if up {
                SendOutcome::Delivered { status: 201 }
            } else {
                SendOutcome::Retry { status: Some(503), error: "unavailable".into(), retry_after: None }
            };
            let result = to_result(&claimed_at(attempts, written), outcome, now);
            attempts += 1;
            match result.next_attempt_at {
                Some(next) if result.status == "pending" => now = next,
                _ => return (attempts, now - written, result.status),
            }
        }
    }

    #[test]
    fn a_two_minute_outage_never_uses_a_message_up() {
        let outage = chrono::Duration::minutes(2);
        let (attempts, delivered_after, status) = through_an_outage(outage);
        assert_eq!(status, "sent");
        // Ten tries under the old count would have been exhausted by 1+2+...+256 s; here the message
        // simply keeps its place, and gets through within one capped backoff of the service's return.
        assert!(delivered_after >= outage && delivered_after < outage + MAX_BACKOFF, "{delivered_after}");
        assert!(attempts >= 15, "{attempts} tries");
    }

    #[test]
    fn gives_up_an_hour_after_the_message_was_written_not_after_a_count() {
        let written = chrono::Utc::now();
        let busy = || retry(None);
        // Fifty tries in, with the hour not yet up: still trying.
        let before = to_result(&claimed_at(50, written), busy(), written + RETRY_FOR - chrono::Duration::seconds(1));
        assert_eq!(before.status, "pending");
        let after = to_result(&claimed_at(50, written), busy(), written + RETRY_FOR);
        assert_eq!((after.status, after.next_attempt_at), ("failed", None));
        assert!(after.error.unwrap().starts_with("gave up after 60 minutes and 51 attempts"));
        // An outage as long as the hour uses the message up, after about six tries a minute.
        let (attempts, _, status) = through_an_outage(RETRY_FOR + chrono::Duration::minutes(1));
        assert_eq!(status, "failed");
        assert!((350..=365).contains(&attempts), "{attempts} tries in the hour");
    }

    #[test]
    fn each_device_keeps_its_messages_in_the_order_claimed() {
        let device = |n: u128| Some(Uuid::from_u128(n));
        let mut batch: Vec<Claimed> = Vec::new();
        for (n, subscription, destination) in
            [(1, device(7), None), (2, device(8), None), (3, device(7), None), (4, None, Some("a@school.test"))]
        {
            batch.push(Claimed {
                id: Uuid::from_u128(n),
                subscription_id: subscription,
                destination: destination.map(str::to_string),
                channel: if subscription.is_some() { "push" } else { "email" }.into(),
                ..claimed(0)
            });
        }
        batch.push(Claimed { id: Uuid::from_u128(5), ..batch[0].clone() });
        let queues: Vec<Vec<u128>> =
            by_device(batch).iter().map(|q| q.iter().map(|d| d.id.as_u128()).collect()).collect();
        assert_eq!(queues, vec![vec![1, 3, 5], vec![2], vec![4]]);
    }

    #[test]
    fn forgets_gone_devices_and_records_what_was_sent() {
        let now = chrono::Utc::now();
        assert_eq!(to_result(&claimed(0), SendOutcome::Gone { status: 410 }, now).status, "gone");
        assert_eq!(to_result(&claimed(0), SendOutcome::Delivered { status: 201 }, now).status, "sent");
    }
}
