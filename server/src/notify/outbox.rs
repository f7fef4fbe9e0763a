//! The deliveries outbox: one row per message to one device, written in the same transaction as the
//! alert change that causes it, so a crash can lose neither.

use std::collections::BTreeSet;

use homeward_shared::api::{DeliveryAttemptView, DeliveryView, PushPayload};
use homeward_shared::escalation::{Channel as ChannelKind, default_channels};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::parse_id;
use crate::clock::{from_millis, to_millis};
use crate::db::{Backend, WriteTx};
use crate::error::ApiError;
use crate::escalation::alerts::Alert;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Step,
    Repeat,
    StandDown,
    Resolved,
    /// An informational alert or a reminder.
    Notice,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Step => "step",
            Purpose::Repeat => "repeat",
            Purpose::StandDown => "stand_down",
            Purpose::Resolved => "resolved",
            Purpose::Notice => "notice",
        }
    }
}

/// Alarm notifications live five minutes: after that a newer one (a repeat) says it better.
pub const ALERT_TTL_SECONDS: i64 = 300;

/// One destination: a push subscription id, or an e-mail address or phone number.
type Target = (Option<String>, Option<String>);

/// How one person can be reached on one channel right now: the destinations to send to.
async fn destinations(tx: &mut WriteTx, person: Uuid, channel: ChannelKind) -> Result<Vec<Target>, ApiError> {
    if !tx.channels.has(channel) {
        return Ok(vec![]);
    }
    Ok(match channel {
        ChannelKind::Push => {
            let devices: Vec<(String,)> =
                sqlx::query_as("select subscription_id from push_subscriptions where user_id = $1 order by created_at")
                    .bind(person.to_string())
                    .fetch_all(tx.conn())
                    .await?;
            devices.into_iter().map(|(id,)| (Some(id), None)).collect()
        }
        ChannelKind::Email | ChannelKind::Sms => {
            let row: Option<(String, Option<String>)> =
                sqlx::query_as("select email, phone from users where user_id = $1 and active = 1")
                    .bind(person.to_string())
                    .fetch_optional(tx.conn())
                    .await?;
            let address = match (row, channel) {
                (Some((email, _)), ChannelKind::Email) => Some(email),
                (Some((_, phone)), ChannelKind::Sms) => phone,
                _ => None,
            };
            address.into_iter().map(|a| (None, Some(a))).collect()
        }
    })
}

/// The first of `channels` that can reach `person`, its destinations, and the channels after it.
async fn first_reachable(
    tx: &mut WriteTx,
    person: Uuid,
    channels: &[ChannelKind],
) -> Result<Option<(ChannelKind, Vec<Target>, Vec<ChannelKind>)>, ApiError> {
    for (i, channel) in channels.iter().enumerate() {
        let found = destinations(tx, person, *channel).await?;
        if !found.is_empty() {
            return Ok(Some((*channel, found, channels[i + 1..].to_vec())));
        }
    }
    Ok(None)
}

fn encode_channels(channels: &[ChannelKind]) -> Option<String> {
    (!channels.is_empty()).then(|| channels.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(","))
}

fn decode_channels(raw: Option<&str>) -> Vec<ChannelKind> {
    raw.unwrap_or_default().split(',').filter_map(ChannelKind::parse).collect()
}

/// The parts of a delivery row every channel of one reach shares.
struct Reach<'a> {
    school_id: String,
    alert_id: String,
    recipient_id: Option<String>,
    purpose: &'a str,
    step: Option<i64>,
    payload: &'a str,
    urgency: &'a str,
    ttl_seconds: i64,
    topic: &'a str,
    reach_id: String,
}

async fn insert_row(
    tx: &mut WriteTx,
    reach: &Reach<'_>,
    channel: &str,
    (subscription, destination): Target,
    status: &str,
    fallback: Option<String>,
    now: Timestamp,
) -> Result<(), ApiError> {
    sqlx::query(
        "insert into deliveries (delivery_id, school_id, alert_id, recipient_id, subscription_id, channel, purpose, \
         step_index, payload, urgency, ttl_seconds, topic, status, attempts, next_attempt_at, created_at, reach_id, \
         fallback, destination) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $14, $15, $16, $17)",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(&reach.school_id)
    .bind(&reach.alert_id)
    .bind(reach.recipient_id.as_deref())
    .bind(subscription)
    .bind(channel)
    .bind(reach.purpose)
    .bind(reach.step)
    .bind(reach.payload)
    .bind(reach.urgency)
    .bind(reach.ttl_seconds)
    .bind(reach.topic)
    .bind(status)
    .bind(to_millis(now))
    .bind(&reach.reach_id)
    .bind(fallback)
    .bind(destination)
    .execute(tx.conn())
    .await?;
    if status == "pending" {
        tx.wrote_deliveries = true;
    }
    Ok(())
}

/// Queue `payload` for every person in `people` on the first of `channels` that can reach them (every
/// device, for push); the rest wait as the fallback. A person no channel can reach gets a `no_channel`
/// row, so the alert shows who could not be reached; it never holds up the ladder.
#[allow(clippy::too_many_arguments)]
pub async fn enqueue(
    tx: &mut WriteTx,
    alert: &Alert,
    people: &BTreeSet<Uuid>,
    purpose: Purpose,
    step: Option<i64>,
    channels: &[ChannelKind],
    payload: &PushPayload,
    now: Timestamp,
) -> Result<(), ApiError> {
    let body = serde_json::to_string(payload).map_err(anyhow::Error::from)?;
    let urgency = match purpose {
        Purpose::Step | Purpose::Repeat => "high",
        Purpose::StandDown | Purpose::Resolved | Purpose::Notice => "normal",
    };
    // One topic per alert: a push service may replace an undelivered older message with a newer one.
    let topic = alert.id.simple().to_string();
    let channels = if channels.is_empty() { default_channels() } else { channels.to_vec() };
    for person in people {
        let reach = Reach {
            school_id: alert.school_id.to_string(),
            alert_id: alert.id.to_string(),
            recipient_id: Some(person.to_string()),
            purpose: purpose.as_str(),
            step,
            payload: &body,
            urgency,
            ttl_seconds: ALERT_TTL_SECONDS,
            topic: &topic,
            reach_id: Uuid::new_v4().to_string(),
        };
        match first_reachable(tx, *person, &channels).await? {
            Some((channel, targets, rest)) => {
                let fallback = encode_channels(&rest);
                for target in targets {
                    insert_row(tx, &reach, channel.as_str(), target, "pending", fallback.clone(), now).await?;
                }
            }
            None => insert_row(tx, &reach, channels[0].as_str(), (None, None), "no_channel", None, now).await?,
        }
    }
    Ok(())
}

/// A step that named only the on-call leader found nobody on call: recorded with the alert's deliveries.
pub async fn record_nobody_on_call(
    tx: &mut WriteTx,
    alert: &Alert,
    step: i64,
    why: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    sqlx::query(
        "insert into deliveries (delivery_id, school_id, alert_id, recipient_id, subscription_id, channel, purpose, \
         step_index, payload, urgency, ttl_seconds, topic, status, attempts, next_attempt_at, created_at, last_error) \
         values ($1, $2, $3, null, null, 'rota', 'step', $4, '{}', 'high', 0, $5, 'nobody_on_call', 0, $6, $6, $7)",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(alert.school_id.to_string())
    .bind(alert.id.to_string())
    .bind(step)
    .bind(alert.id.simple().to_string())
    .bind(to_millis(now))
    .bind(why)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One delivery row of a reach, as the fallback decision sees it.
struct ReachRow<'a> {
    /// The row whose attempt is being recorded.
    mine: bool,
    channel: &'a str,
    status: &'a str,
    attempts: i64,
}

/// Move on to the next channel? Only when nothing of the reach was delivered, no other device of this
/// channel is still on its first try, the reach has not already moved on, and a channel is left.
fn should_fall_back(rows: &[ReachRow<'_>], channel: &str, later: &[ChannelKind]) -> bool {
    let delivered = rows.iter().any(|r| r.status == "sent");
    let waiting = rows.iter().any(|r| {
        !r.mine && r.channel == channel && (r.status == "sending" || (r.status == "pending" && r.attempts == 0))
    });
    let moved_on = rows.iter().any(|r| ChannelKind::parse(r.channel).is_some_and(|c| later.contains(&c)));
    !delivered && !waiting && !moved_on && !later.is_empty()
}

/// After `delivery` could not deliver (failed, gone, or a first attempt that must be retried), send the
/// same message on the next channel that can reach the person, unless another row of the reach was
/// delivered, another device of this channel is still on its first try, or the reach already moved on.
/// Runs in the transaction that records the attempt, with the reach's rows locked first, so two devices
/// failing at once move on exactly once.
async fn fall_back(tx: &mut WriteTx, delivery: &Claimed, now: Timestamp) -> Result<(), ApiError> {
    let Some(reach_id) = &delivery.reach_id else { return Ok(()) };
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "select delivery_id, channel, status, attempts from deliveries where reach_id = $1 order by delivery_id",
    )
    .bind(reach_id)
    .fetch_all(tx.conn())
    .await?;
    let later = decode_channels(delivery.fallback.as_deref());
    let me = delivery.id.to_string();
    let reach: Vec<ReachRow<'_>> = rows
        .iter()
        .map(|(id, channel, status, attempts)| ReachRow { mine: *id == me, channel, status, attempts: *attempts })
        .collect();
    if !should_fall_back(&reach, &delivery.channel, &later) {
        return Ok(());
    }
    type Row = (String, String, Option<String>, String, Option<i64>, String, String, i64, String);
    let (school_id, alert_id, recipient_id, purpose, step, payload, urgency, ttl_seconds, topic): Row = sqlx::query_as(
        "select school_id, alert_id, recipient_id, purpose, step_index, payload, urgency, ttl_seconds, topic \
             from deliveries where delivery_id = $1",
    )
    .bind(delivery.id.to_string())
    .fetch_one(tx.conn())
    .await?;
    let Some(person) = recipient_id.as_deref().map(parse_id).transpose()? else { return Ok(()) };
    let Some((channel, targets, rest)) = first_reachable(tx, person, &later).await? else { return Ok(()) };
    let reach = Reach {
        school_id,
        alert_id,
        recipient_id,
        purpose: &purpose,
        step,
        payload: &payload,
        urgency: &urgency,
        ttl_seconds,
        topic: &topic,
        reach_id: reach_id.clone(),
    };
    let fallback = encode_channels(&rest);
    for target in targets {
        insert_row(tx, &reach, channel.as_str(), target, "pending", fallback.clone(), now).await?;
    }
    Ok(())
}

/// Everyone an alert's steps or repeats were addressed to, whether or not a device took it.
pub async fn recipients_alerted(tx: &mut WriteTx, alert_id: Uuid) -> Result<BTreeSet<Uuid>, ApiError> {
    let rows: Vec<(Option<String>,)> = sqlx::query_as(
        "select distinct recipient_id from deliveries where alert_id = $1 and purpose in ('step', 'repeat')",
    )
    .bind(alert_id.to_string())
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter().filter_map(|(id,)| id).map(|id| parse_id(&id)).collect()
}

/// One claimed delivery, with where it goes.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    /// `push`, `email` or `sms`.
    pub channel: String,
    /// The e-mail address or phone number, for those channels.
    pub destination: Option<String>,
    pub reach_id: Option<String>,
    pub fallback: Option<String>,
    pub subscription_id: Option<Uuid>,
    pub endpoint: Option<String>,
    pub p256dh: Option<String>,
    pub auth: Option<String>,
    pub payload: String,
    pub urgent: bool,
    pub ttl_seconds: i64,
    pub topic: String,
    pub attempts: i64,
}

/// A claim lasts this long: if the process dies mid-send, another picks the delivery up after it.
pub const LEASE_SECONDS: i64 = 30;

type ClaimRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Claim up to `limit` deliveries that are due (or whose claim lapsed), oldest first.
pub async fn claim(tx: &mut WriteTx, now: Timestamp, limit: i64) -> Result<Vec<Claimed>, ApiError> {
    let lock = match tx.backend {
        Backend::Postgres => " for update of d skip locked",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "select d.delivery_id, d.subscription_id, s.endpoint, s.p256dh, s.auth, d.payload, d.urgency, d.ttl_seconds, d.topic, d.attempts, \
         d.channel, d.destination, d.reach_id, d.fallback \
         from deliveries d left join push_subscriptions s on s.subscription_id = d.subscription_id \
         where (d.status = 'pending' and d.next_attempt_at <= $1) or (d.status = 'sending' and d.lease_until < $1) \
         order by d.next_attempt_at limit {limit}{lock}"
    );
    let rows: Vec<ClaimRow> = sqlx::query_as(&sql).bind(to_millis(now)).fetch_all(tx.conn()).await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for (
        id,
        subscription_id,
        endpoint,
        p256dh,
        auth,
        payload,
        urgency,
        ttl_seconds,
        topic,
        attempts,
        channel,
        destination,
        reach_id,
        fallback,
    ) in rows
    {
        sqlx::query("update deliveries set status = 'sending', lease_until = $1 where delivery_id = $2")
            .bind(to_millis(now) + LEASE_SECONDS * 1000)
            .bind(&id)
            .execute(tx.conn())
            .await?;
        claimed.push(Claimed {
            id: parse_id(&id)?,
            channel,
            destination,
            reach_id,
            fallback,
            subscription_id: subscription_id.map(|s| parse_id(&s)).transpose()?,
            endpoint,
            p256dh,
            auth,
            payload,
            urgent: urgency == "high",
            ttl_seconds,
            topic,
            attempts,
        });
    }
    Ok(claimed)
}

pub async fn next_due(pool: &sqlx::AnyPool) -> Result<Option<Timestamp>, ApiError> {
    let row: (Option<i64>,) = sqlx::query_as(
        "select min(case when status = 'pending' then next_attempt_at else lease_until end) from deliveries \
         where status in ('pending', 'sending')",
    )
    .fetch_one(pool)
    .await?;
    Ok(row.0.map(from_millis))
}

pub struct DeliveryResult {
    pub status: &'static str,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
}

pub async fn record(
    tx: &mut WriteTx,
    delivery: &Claimed,
    result: &DeliveryResult,
    now: Timestamp,
) -> Result<(), ApiError> {
    if let (Some(reach_id), crate::db::Backend::Postgres) = (&delivery.reach_id, tx.backend) {
        // Lock every row of the reach, in one order, before writing any: see `fall_back`.
        sqlx::query("select delivery_id from deliveries where reach_id = $1 order by delivery_id for update")
            .bind(reach_id)
            .execute(tx.conn())
            .await?;
    }
    sqlx::query(
        "update deliveries set status = $1, attempts = attempts + 1, last_status_code = $2, last_error = $3, \
         next_attempt_at = coalesce($4, next_attempt_at), lease_until = null, \
         sent_at = case when $1 = 'sent' then $5 else sent_at end where delivery_id = $6",
    )
    .bind(result.status)
    .bind(result.status_code.map(i64::from))
    .bind(result.error.as_deref())
    .bind(result.next_attempt_at.map(to_millis))
    .bind(to_millis(now))
    .bind(delivery.id.to_string())
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "insert into delivery_attempts (delivery_id, attempt, at, outcome, status_code, error) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(delivery.id.to_string())
    .bind(delivery.attempts + 1)
    .bind(to_millis(now))
    .bind(match result.status {
        "pending" => "retry",
        other => other,
    })
    .bind(result.status_code.map(i64::from))
    .bind(result.error.as_deref())
    .execute(tx.conn())
    .await?;
    if let Some(subscription) = delivery.subscription_id {
        match result.status {
            "gone" => {
                sqlx::query("delete from push_subscriptions where subscription_id = $1")
                    .bind(subscription.to_string())
                    .execute(tx.conn())
                    .await?;
            }
            "sent" => {
                sqlx::query("update push_subscriptions set last_success_at = $1 where subscription_id = $2")
                    .bind(to_millis(now))
                    .bind(subscription.to_string())
                    .execute(tx.conn())
                    .await?;
            }
            _ => {}
        }
    }
    let first_try_failed = result.status == "pending" && delivery.attempts == 0;
    if matches!(result.status, "failed" | "gone") || first_try_failed {
        fall_back(tx, delivery, now).await?;
    }
    if result.status == "pending" {
        tx.wrote_deliveries = true;
    }
    Ok(())
}

type ViewRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
    i64,
    Option<i64>,
);

/// delivery id, attempt, at, outcome, status code, error.
type AttemptRow = (String, i64, i64, String, Option<i64>, Option<String>);

pub async fn for_alert(pool: &sqlx::AnyPool, alert_id: Uuid) -> Result<Vec<DeliveryView>, ApiError> {
    let rows: Vec<ViewRow> = sqlx::query_as(
        "select d.delivery_id, d.recipient_id, u.name, d.channel, d.status, d.purpose, d.step_index, d.attempts, \
         d.last_status_code, d.last_error, d.created_at, d.sent_at \
         from deliveries d left join users u on u.user_id = d.recipient_id where d.alert_id = $1 order by d.created_at, u.name",
    )
    .bind(alert_id.to_string())
    .fetch_all(pool)
    .await?;
    let history: Vec<AttemptRow> = sqlx::query_as(
        "select a.delivery_id, a.attempt, a.at, a.outcome, a.status_code, a.error from delivery_attempts a \
         join deliveries d on d.delivery_id = a.delivery_id where d.alert_id = $1 order by a.delivery_id, a.attempt",
    )
    .bind(alert_id.to_string())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(id, recipient, name, channel, status, purpose, step, attempts, code, error, created, sent)| {
            let history = history
                .iter()
                .filter(|h| h.0 == id)
                .map(|(_, attempt, at, outcome, status_code, error)| DeliveryAttemptView {
                    attempt: *attempt,
                    at: from_millis(*at),
                    outcome: outcome.clone(),
                    status_code: *status_code,
                    error: error.clone(),
                })
                .collect();
            Ok(DeliveryView {
                history,
                id: parse_id(&id)?,
                recipient_id: recipient.map(|r| parse_id(&r)).transpose()?,
                recipient_name: name
                    .unwrap_or_else(|| if channel == "rota" { "the on-call leader".into() } else { "unknown".into() }),
                channel,
                status,
                purpose,
                step: step.map(|s| s + 1),
                attempts,
                last_status_code: code,
                last_error: error,
                created_at: from_millis(created),
                sent_at: sent.map(from_millis),
            })
        })
        .collect()
}

/// Delivery in words, one line per recipient and purpose: "step 2: sent to 2 of Priya Okafor's devices
/// at 14:05:03; one endpoint gone".
pub fn summarise(deliveries: &[DeliveryView]) -> Vec<String> {
    let mut groups: Vec<(String, Option<i64>, String, Vec<&DeliveryView>)> = Vec::new();
    for d in deliveries {
        let key = (d.purpose.clone(), d.step, d.recipient_name.clone());
        match groups.iter_mut().find(|g| (g.0.clone(), g.1, g.2.clone()) == key) {
            Some(group) => group.3.push(d),
            None => groups.push((key.0, key.1, key.2, vec![d])),
        }
    }
    groups
        .into_iter()
        .map(|(purpose, step, name, rows)| {
            let label = match step {
                Some(n) => format!("step {n}"),
                None => purpose.replace('_', " "),
            };
            if let Some(r) = rows.iter().find(|r| r.status == "nobody_on_call") {
                let why = r.last_error.as_deref().unwrap_or("nobody was on call");
                return format!("{label}: nobody on call ({why}); the next step fired at once");
            }
            if rows.iter().all(|r| r.status == "no_channel") {
                return format!("{label}: {name} has no device that can receive alerts");
            }
            let push: Vec<&&DeliveryView> = rows.iter().filter(|r| r.channel == "push").collect();
            let mut line = format!("{label}:");
            if !push.is_empty() {
                let sent: Vec<&&&DeliveryView> = push.iter().filter(|r| r.status == "sent").collect();
                line.push_str(&format!(" sent to {} of {name}'s {} device(s)", sent.len(), push.len()));
                if let Some(at) = sent.iter().filter_map(|r| r.sent_at).max() {
                    line.push_str(&format!(" at {}", at.format("%H:%M:%S")));
                }
                let gone = push.iter().filter(|r| r.status == "gone").count();
                if gone > 0 {
                    line.push_str(&format!("; {gone} endpoint(s) gone"));
                }
                let waiting = push.iter().filter(|r| matches!(r.status.as_str(), "pending" | "sending")).count();
                if waiting > 0 {
                    line.push_str(&format!("; {waiting} still trying"));
                }
                let failed = push.iter().filter(|r| r.status == "failed").count();
                if failed > 0 {
                    line.push_str(&format!("; {failed} failed"));
                }
            }
            for (channel, word) in [("email", "by e-mail"), ("sms", "by SMS")] {
                for r in rows.iter().filter(|r| r.channel == channel) {
                    let outcome = match (r.status.as_str(), r.sent_at) {
                        ("sent", Some(at)) => format!("sent at {}", at.format("%H:%M:%S")),
                        ("pending" | "sending", _) => "still trying".to_string(),
                        (other, _) => other.replace('_', " "),
                    };
                    let sep = if push.is_empty() && line.ends_with(':') { " " } else { "; " };
                    line.push_str(&format!("{sep}{name} {word}: {outcome}"));
                }
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(mine: bool, channel: &'a str, status: &'a str, attempts: i64) -> ReachRow<'a> {
        ReachRow { mine, channel, status, attempts }
    }

    const EMAIL_THEN_SMS: &[ChannelKind] = &[ChannelKind::Email, ChannelKind::Sms];

    #[test]
    fn a_failed_only_device_falls_back_once() {
        assert!(should_fall_back(&[row(true, "push", "gone", 1)], "push", EMAIL_THEN_SMS));
        // Already moved on (another device's failure did it): not again.
        let moved = [row(true, "push", "failed", 1), row(false, "email", "pending", 0)];
        assert!(!should_fall_back(&moved, "push", EMAIL_THEN_SMS));
        // Nothing left to try.
        assert!(!should_fall_back(&[row(true, "sms", "failed", 1)], "sms", &[]));
    }

    #[test]
    fn waits_for_other_devices_on_their_first_try_and_stops_once_one_delivered() {
        let other_sending = [row(true, "push", "gone", 1), row(false, "push", "sending", 0)];
        assert!(!should_fall_back(&other_sending, "push", EMAIL_THEN_SMS));
        let other_untried = [row(true, "push", "gone", 1), row(false, "push", "pending", 0)];
        assert!(!should_fall_back(&other_untried, "push", EMAIL_THEN_SMS));
        // The other device is retrying after its first try: it is not delivering, so move on now.
        let other_retrying = [row(true, "push", "gone", 1), row(false, "push", "pending", 2)];
        assert!(should_fall_back(&other_retrying, "push", EMAIL_THEN_SMS));
        let other_sent = [row(true, "push", "failed", 1), row(false, "push", "sent", 1)];
        assert!(!should_fall_back(&other_sent, "push", EMAIL_THEN_SMS));
    }

    #[test]
    fn channels_round_trip_in_order() {
        let encoded = encode_channels(&[ChannelKind::Sms, ChannelKind::Email]);
        assert_eq!(encoded.as_deref(), Some("sms,email"));
        assert_eq!(decode_channels(encoded.as_deref()), vec![ChannelKind::Sms, ChannelKind::Email]);
        assert_eq!(encode_channels(&[]), None);
        assert!(decode_channels(None).is_empty());
    }
}
