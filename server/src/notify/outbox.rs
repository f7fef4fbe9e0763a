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

/// `next_attempt_at` of a message waiting behind a refused one to the same device (9999-12-31): never
/// due by itself; released when the refused one goes through or is given up, or the device is forgotten.
pub const HELD: i64 = 253_402_300_799_999;

/// The order messages were written in: a sequence on PostgreSQL, the rowid on SQLite (deliveries are
/// never deleted, so it only grows).
fn queue_order(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "queue_order",
        Backend::Sqlite => "rowid",
    }
}

/// What a held message's record says while it waits.
const HELD_BEHIND: &str = "held behind an earlier message the device's push service refused";

/// Alarm notifications live five minutes: after that a newer one (a repeat) says it better.
pub const ALERT_TTL_SECONDS: i64 = 300;

/// One destination: a push subscription id, or an e-mail address or phone number; and whether the
/// device is held (its push service refused a message that has not gone through yet).
type Target = (Option<String>, Option<String>, bool);

/// How one person can be reached on one channel right now: the destinations to send to.
async fn destinations(tx: &mut WriteTx, person: Uuid, channel: ChannelKind) -> Result<Vec<Target>, ApiError> {
    if !tx.channels.has(channel) {
        return Ok(vec![]);
    }
    Ok(match channel {
        ChannelKind::Push => {
            let devices: Vec<(String, Option<String>)> = sqlx::query_as(
                "select subscription_id, held_by from push_subscriptions where user_id = $1 order by created_at",
            )
            .bind(person.to_string())
            .fetch_all(tx.conn())
            .await?;
            devices.into_iter().map(|(id, held_by)| (Some(id), None, held_by.is_some())).collect()
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
            address.into_iter().map(|a| (None, Some(a), false)).collect()
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

/// Queue one row; returns whether it waits behind a message its device's push service refused.
async fn insert_row(
    tx: &mut WriteTx,
    reach: &Reach<'_>,
    channel: &str,
    (subscription, destination, held): Target,
    status: &str,
    fallback: Option<String>,
    now: Timestamp,
) -> Result<bool, ApiError> {
    sqlx::query(
        "insert into deliveries (delivery_id, school_id, alert_id, recipient_id, subscription_id, channel, purpose, \
         step_index, payload, urgency, ttl_seconds, topic, status, attempts, next_attempt_at, created_at, reach_id, \
         fallback, destination, last_error) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $18, $14, $15, $16, $17, $19)",
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
    .bind(if held { HELD } else { to_millis(now) })
    .bind(held.then_some(HELD_BEHIND))
    .execute(tx.conn())
    .await?;
    if status == "pending" {
        tx.wrote_deliveries = true;
    }
    Ok(held)
}

/// Queue the message on the first of `channels` that can reach `person` (every device, for push).
/// When every one of those devices waits behind a refused message, its push service is known to be
/// failing: the copies stay queued, to go out in order once it is back, and the next channel is tried
/// now. Returns whether any channel could reach the person.
async fn reach_person(
    tx: &mut WriteTx,
    reach: &Reach<'_>,
    person: Uuid,
    channels: &[ChannelKind],
    now: Timestamp,
) -> Result<bool, ApiError> {
    let mut channels = channels.to_vec();
    let mut reached = false;
    while let Some((channel, targets, rest)) = first_reachable(tx, person, &channels).await? {
        reached = true;
        let fallback = encode_channels(&rest);
        let mut all_held = true;
        for target in targets {
            all_held &= insert_row(tx, reach, channel.as_str(), target, "pending", fallback.clone(), now).await?;
        }
        if !all_held {
            break;
        }
        channels = rest;
    }
    Ok(reached)
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
        if !reach_person(tx, &reach, *person, &channels, now).await? {
            insert_row(tx, &reach, channels[0].as_str(), (None, None, false), "no_channel", None, now).await?;
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
    /// Waiting behind a refused message to the same device: not about to deliver.
    held: bool,
}

/// Move on to the next channel? Only when nothing of the reach was delivered, no other device of this
/// channel is still on its first try, the reach has not already moved on, and a channel is left.
fn should_fall_back(rows: &[ReachRow<'_>], channel: &str, later: &[ChannelKind]) -> bool {
    let delivered = rows.iter().any(|r| r.status == "sent");
    let waiting = rows.iter().any(|r| {
        !r.mine
            && r.channel == channel
            && (r.status == "sending" || (r.status == "pending" && r.attempts == 0 && !r.held))
    });
    let moved_on = rows.iter().any(|r| ChannelKind::parse(r.channel).is_some_and(|c| later.contains(&c)));
    !delivered && !waiting && !moved_on && !later.is_empty()
}

/// After `delivery` could not deliver (failed, gone, or a first attempt that must be retried), send the
/// same message on the next channel that can reach the person, unless another row of the reach was
/// delivered, another device of this channel is still on its first try, or the reach already moved on.
/// Runs in the transaction that records the attempt, with the reach's rows locked first, so two devices
/// failing at once move on exactly once.
async fn fall_back(tx: &mut WriteTx, row: &QueuedRow, now: Timestamp) -> Result<(), ApiError> {
    let Some(reach_id) = &row.reach_id else { return Ok(()) };
    let lock = match tx.backend {
        Backend::Postgres => " for update",
        Backend::Sqlite => "",
    };
    let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(&format!(
        "select delivery_id, channel, status, attempts, next_attempt_at from deliveries where reach_id = $1 \
         order by delivery_id{lock}"
    ))
    .bind(reach_id)
    .fetch_all(tx.conn())
    .await?;
    let later = decode_channels(row.fallback.as_deref());
    let reach: Vec<ReachRow<'_>> = rows
        .iter()
        .map(|(id, channel, status, attempts, next)| ReachRow {
            mine: *id == row.id,
            channel,
            status,
            attempts: *attempts,
            held: *next == HELD,
        })
        .collect();
    if !should_fall_back(&reach, &row.channel, &later) {
        return Ok(());
    }
    type Row = (String, String, Option<String>, String, Option<i64>, String, String, i64, String);
    let (school_id, alert_id, recipient_id, purpose, step, payload, urgency, ttl_seconds, topic): Row = sqlx::query_as(
        "select school_id, alert_id, recipient_id, purpose, step_index, payload, urgency, ttl_seconds, topic \
             from deliveries where delivery_id = $1",
    )
    .bind(&row.id)
    .fetch_one(tx.conn())
    .await?;
    let Some(person) = recipient_id.as_deref().map(parse_id).transpose()? else { return Ok(()) };
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
    reach_person(tx, &reach, person, &later, now).await?;
    Ok(())
}

/// A queued row as the fallback decision needs it.
struct QueuedRow {
    id: String,
    channel: String,
    reach_id: Option<String>,
    fallback: Option<String>,
}

impl From<&Claimed> for QueuedRow {
    fn from(delivery: &Claimed) -> Self {
        QueuedRow {
            id: delivery.id.to_string(),
            channel: delivery.channel.clone(),
            reach_id: delivery.reach_id.clone(),
            fallback: delivery.fallback.clone(),
        }
    }
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
    pub created_at: Timestamp,
    /// Released from behind a refused message: sent one after another with the device's others.
    pub in_order: bool,
    /// This message holds its device: nothing else goes to the device until it is settled.
    pub holds_device: bool,
}

/// A claim lasts this long: if the process dies mid-send, another picks the delivery up after it.
pub const LEASE_SECONDS: i64 = 30;

/// Claim up to `limit` deliveries that are due, oldest first, and those whose claim lapsed. Of a device
/// that is held, only the message holding it.
pub async fn claim(tx: &mut WriteTx, now: Timestamp, limit: i64) -> Result<Vec<Claimed>, ApiError> {
    use sqlx::Row;
    let lock = match tx.backend {
        Backend::Postgres => " for update of d skip locked",
        Backend::Sqlite => "",
    };
    // Each query walks one index in its order and stops at the limit: a settled message leaves a dead
    // entry in the queue's index until vacuum, and an ordered scan marks those dead as it passes
    // (a bitmap scan over the whole queue would visit every one of them on every claim).
    let select = "select d.delivery_id, d.subscription_id, s.endpoint, s.p256dh, s.auth, d.payload, d.urgency, \
         d.ttl_seconds, d.topic, d.attempts, d.channel, d.destination, d.reach_id, d.fallback, d.created_at, d.in_order, \
         s.held_by from deliveries d left join push_subscriptions s on s.subscription_id = d.subscription_id";
    let held = "(s.held_by is null or s.held_by = d.delivery_id)";
    let mut rows = sqlx::query(&format!(
        "{select} where d.status = 'sending' and d.lease_until < $1 and {held} order by d.lease_until limit {limit}{lock}"
    ))
    .bind(to_millis(now))
    .fetch_all(tx.conn())
    .await?;
    let room = limit - rows.len() as i64;
    if room > 0 {
        let due = sqlx::query(&format!(
            "{select} where d.status = 'pending' and d.next_attempt_at <= $1 and {held} \
             order by d.next_attempt_at limit {room}{lock}"
        ))
        .bind(to_millis(now))
        .fetch_all(tx.conn())
        .await?;
        rows.extend(due);
    }
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get(0)?;
        let subscription_id: Option<String> = row.try_get(1)?;
        let held_by: Option<String> = row.try_get(16)?;
        claimed.push(Claimed {
            id: parse_id(&id)?,
            subscription_id: subscription_id.map(|s| parse_id(&s)).transpose()?,
            endpoint: row.try_get(2)?,
            p256dh: row.try_get(3)?,
            auth: row.try_get(4)?,
            payload: row.try_get(5)?,
            urgent: row.try_get::<String, _>(6)? == "high",
            ttl_seconds: row.try_get(7)?,
            topic: row.try_get(8)?,
            attempts: row.try_get(9)?,
            channel: row.try_get(10)?,
            destination: row.try_get(11)?,
            reach_id: row.try_get(12)?,
            fallback: row.try_get(13)?,
            created_at: from_millis(row.try_get(14)?),
            in_order: row.try_get::<i64, _>(15)? != 0,
            holds_device: held_by.as_deref() == Some(id.as_str()),
        });
    }
    // One statement for the whole batch: each row is already locked (PostgreSQL) or the writer is ours.
    let placeholders: Vec<String> = (0..claimed.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "update deliveries set status = 'sending', lease_until = $1 where delivery_id in ({})",
        placeholders.join(", ")
    );
    let update = sqlx::query(&sql).bind(to_millis(now) + LEASE_SECONDS * 1000);
    claimed.iter().fold(update, |q, d| q.bind(d.id.to_string())).execute(tx.conn()).await?;
    Ok(claimed)
}

/// When the next message falls due or the next claim lapses (each read off its own index).
pub async fn next_due(pool: &sqlx::AnyPool) -> Result<Option<Timestamp>, ApiError> {
    let (due,): (Option<i64>,) =
        sqlx::query_as("select min(next_attempt_at) from deliveries where status = 'pending'").fetch_one(pool).await?;
    let (lapse,): (Option<i64>,) =
        sqlx::query_as("select min(lease_until) from deliveries where status = 'sending'").fetch_one(pool).await?;
    Ok(due.into_iter().chain(lapse).min().map(from_millis))
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
    if result.status == PUT_BACK {
        return put_back(tx, delivery, now).await;
    }
    // Lock every row of the reach, in one order, before writing any: see `fall_back`. A delivery that
    // went through never falls back, and needs no lock.
    if let (Some(reach_id), Backend::Postgres, false) = (&delivery.reach_id, tx.backend, result.status == "sent") {
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
    if let (Some(device), "push") = (delivery.subscription_id, delivery.channel.as_str()) {
        match result.status {
            "pending" => hold_device(tx, device, now).await?,
            // The device is forgotten below: whatever waited for it is released to find that out.
            "gone" => release_device(tx, device, None, now).await?,
            _ if delivery.holds_device => release_device(tx, device, Some(delivery.id), now).await?,
            _ => {}
        }
    }
    if let (Some(subscription), "gone") = (delivery.subscription_id, result.status) {
        sqlx::query("delete from push_subscriptions where subscription_id = $1")
            .bind(subscription.to_string())
            .execute(tx.conn())
            .await?;
    }
    let first_try_failed = result.status == "pending" && delivery.attempts == 0;
    if matches!(result.status, "failed" | "gone") || first_try_failed {
        fall_back(tx, &delivery.into(), now).await?;
    }
    if result.status == "pending" {
        tx.wrote_deliveries = true;
    }
    Ok(())
}

/// Note when each device last took a message: once per device for a batch of results (one device may
/// take hundreds of alarms a second).
pub async fn note_delivered(
    tx: &mut WriteTx,
    devices: &std::collections::BTreeMap<Uuid, Timestamp>,
) -> Result<(), ApiError> {
    for (device, at) in devices {
        sqlx::query("update push_subscriptions set last_success_at = $1 where subscription_id = $2")
            .bind(to_millis(*at))
            .bind(device.to_string())
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// The status of a result that puts a claimed message back unsent: one before it to the same device was
/// just refused, so it waits behind that one.
pub const PUT_BACK: &str = "put_back";

async fn put_back(tx: &mut WriteTx, delivery: &Claimed, now: Timestamp) -> Result<(), ApiError> {
    sqlx::query(
        "update deliveries set status = 'pending', lease_until = null, next_attempt_at = $1, last_error = $3 \
         where delivery_id = $2 and status = 'sending'",
    )
    .bind(HELD)
    .bind(delivery.id.to_string())
    .bind(HELD_BEHIND)
    .execute(tx.conn())
    .await?;
    fall_back(tx, &delivery.into(), now).await
}

/// The push service refused a message to `device`: the earliest message refused holds the device, and
/// every other message to it waits behind that one, so they go out in the order written once the
/// service takes messages again. A message newly held whose reach has nothing else on the way moves on
/// to the next channel now.
async fn hold_device(tx: &mut WriteTx, device: Uuid, now: Timestamp) -> Result<(), ApiError> {
    let order = queue_order(tx.backend);
    let device = device.to_string();
    // The holder is the earliest refused message still queued for the device.
    let holder: Option<(String,)> = sqlx::query_as(&format!(
        "select delivery_id from deliveries where subscription_id = $1 and status in ('pending', 'sending') \
         and attempts > 0 order by {order} limit 1"
    ))
    .bind(&device)
    .fetch_optional(tx.conn())
    .await?;
    let Some((holder,)) = holder else { return Ok(()) };
    let updated = sqlx::query("update push_subscriptions set held_by = $1 where subscription_id = $2")
        .bind(&holder)
        .bind(&device)
        .execute(tx.conn())
        .await?;
    if updated.rows_affected() == 0 {
        return Ok(()); // the device is gone; its messages will find that out themselves
    }
    let newly_held: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "select delivery_id, channel, reach_id, fallback from deliveries \
         where subscription_id = $1 and status = 'pending' and delivery_id <> $2 and next_attempt_at <> $3",
    )
    .bind(&device)
    .bind(&holder)
    .bind(HELD)
    .fetch_all(tx.conn())
    .await?;
    if newly_held.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "update deliveries set next_attempt_at = $1, last_error = coalesce(last_error, $4) \
         where subscription_id = $2 and status = 'pending' and delivery_id <> $3",
    )
    .bind(HELD)
    .bind(&device)
    .bind(&holder)
    .bind(HELD_BEHIND)
    .execute(tx.conn())
    .await?;
    for (id, channel, reach_id, fallback) in newly_held {
        fall_back(tx, &QueuedRow { id, channel, reach_id, fallback }, now).await?;
    }
    Ok(())
}

/// Release the messages waiting for `device` when `holder` (the message holding it) is settled, or
/// whatever holds it when `holder` is `None` (the device is being forgotten). They are due at once and
/// go out one after another, in the order written.
pub async fn release_device(
    tx: &mut WriteTx,
    device: Uuid,
    holder: Option<Uuid>,
    now: Timestamp,
) -> Result<(), ApiError> {
    let released = match holder {
        Some(holder) => {
            sqlx::query("update push_subscriptions set held_by = null where subscription_id = $1 and held_by = $2")
                .bind(device.to_string())
                .bind(holder.to_string())
                .execute(tx.conn())
                .await?
                .rows_affected()
        }
        None => sqlx::query("update push_subscriptions set held_by = null where subscription_id = $1")
            .bind(device.to_string())
            .execute(tx.conn())
            .await?
            .rows_affected(),
    };
    if released == 0 && holder.is_some() {
        return Ok(());
    }
    // Due now, one millisecond apart in the order written (the last exactly now), so every claim takes
    // them oldest first whatever its size.
    let order = queue_order(tx.backend);
    let waiting: Vec<(String,)> = sqlx::query_as(&format!(
        "select delivery_id from deliveries where subscription_id = $1 and status = 'pending' order by {order}"
    ))
    .bind(device.to_string())
    .fetch_all(tx.conn())
    .await?;
    let count = waiting.len() as i64;
    for (position, (id,)) in waiting.iter().enumerate() {
        sqlx::query("update deliveries set next_attempt_at = $1, in_order = 1 where delivery_id = $2")
            .bind(to_millis(now) - count + 1 + position as i64)
            .bind(id)
            .execute(tx.conn())
            .await?;
    }
    if count > 0 {
        tx.wrote_deliveries = true;
    }
    Ok(())
}

/// Which push devices to forget.
pub enum Devices<'a> {
    /// Every device of a person (deactivated).
    OfUser(Uuid),
    /// The device with this endpoint, whoever it belonged to (subscribed again).
    WithEndpoint(&'a str),
    /// A person's device with this endpoint (unsubscribed).
    OfUserWithEndpoint(Uuid, &'a str),
}

/// Delete push subscriptions; returns how many. Messages that waited behind a refused message to one of
/// them are released first, so they find out the device is gone and move on to the next channel.
pub async fn forget_devices(tx: &mut WriteTx, devices: Devices<'_>, now: Timestamp) -> Result<u64, ApiError> {
    let (filter, binds) = match devices {
        Devices::OfUser(user) => ("user_id = $1", vec![user.to_string()]),
        Devices::WithEndpoint(endpoint) => ("endpoint = $1", vec![endpoint.to_string()]),
        Devices::OfUserWithEndpoint(user, endpoint) => {
            ("endpoint = $1 and user_id = $2", vec![endpoint.to_string(), user.to_string()])
        }
    };
    let sql = format!("select subscription_id from push_subscriptions where {filter} and held_by is not null");
    let held: Vec<(String,)> =
        binds.iter().fold(sqlx::query_as(&sql), |q, b| q.bind(b.as_str())).fetch_all(tx.conn()).await?;
    for (device,) in held {
        release_device(tx, parse_id(&device)?, None, now).await?;
    }
    let sql = format!("delete from push_subscriptions where {filter}");
    let deleted = binds.iter().fold(sqlx::query(&sql), |q, b| q.bind(b.as_str())).execute(tx.conn()).await?;
    Ok(deleted.rows_affected())
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
                    error: error.as_deref().map(without_answer_text),
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
                last_error: error.as_deref().map(without_answer_text),
                created_at: from_millis(created),
                sent_at: sent.map(from_millis),
            })
        })
        .collect()
}

/// A recorded error as shown: rows written before push answers were kept out of the record carry up to
/// 200 characters of what the push service said (`push service refused it (403): <text>`), which is
/// cut off here; everything recorded since names only the class of failure.
fn without_answer_text(error: &str) -> String {
    const OLD: &str = "push service refused it (";
    match error.find(OLD).and_then(|at| error[at..].find("):").map(|end| at + end + 1)) {
        Some(end) => error[..end].to_string(),
        None => error.to_string(),
    }
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

    #[test]
    fn recorded_answer_text_from_before_is_not_shown() {
        let old = "push service refused it (403): {\"error\": \"secret\"}";
        assert_eq!(without_answer_text(old), "push service refused it (403)");
        assert_eq!(without_answer_text(&format!("gave up: {old}")), "gave up: push service refused it (403)");
        let now = "the push service refused the message (HTTP 403)";
        assert_eq!(without_answer_text(now), now);
    }

    fn row<'a>(mine: bool, channel: &'a str, status: &'a str, attempts: i64) -> ReachRow<'a> {
        ReachRow { mine, channel, status, attempts, held: false }
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
        // The other device waits behind a message its push service refused: it is not about to deliver.
        let other_held = [row(true, "push", "gone", 1), ReachRow { held: true, ..row(false, "push", "pending", 0) }];
        assert!(should_fall_back(&other_held, "push", EMAIL_THEN_SMS));
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
