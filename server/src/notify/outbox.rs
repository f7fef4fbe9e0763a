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
         fallback, destination, queue_order) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $14, \
         $15, $16, $17, (select coalesce(max(queue_order), 0) + 1 from deliveries))",
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
    /// Waiting behind an earlier message to its device that is being retried: not on a first try.
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
async fn fall_back(tx: &mut WriteTx, delivery: &Claimed, now: Timestamp) -> Result<(), ApiError> {
    let Some(reach_id) = &delivery.reach_id else { return Ok(()) };
    let rows: Vec<(String, String, String, i64, Option<i64>)> = sqlx::query_as(
        "select delivery_id, channel, status, attempts, held_since from deliveries where reach_id = $1 order by delivery_id",
    )
    .bind(reach_id)
    .fetch_all(tx.conn())
    .await?;
    let later = decode_channels(delivery.fallback.as_deref());
    let me = delivery.id.to_string();
    let reach: Vec<ReachRow<'_>> = rows
        .iter()
        .map(|(id, channel, status, attempts, held)| ReachRow {
            mine: *id == me,
            channel,
            status,
            attempts: *attempts,
            held: held.is_some(),
        })
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
    /// When the message was written: retries stop a fixed time after it (see `deliverer`).
    pub created_at: Timestamp,
    /// Waiting behind an earlier message to its device that is being retried.
    pub held: bool,
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
    i64,
    Option<i64>,
);

/// The columns of a `Claimed`, from `deliveries d` joined to `push_subscriptions s`.
const CLAIM_COLUMNS: &str = "d.delivery_id, d.subscription_id, s.endpoint, s.p256dh, s.auth, d.payload, d.urgency, \
     d.ttl_seconds, d.topic, d.attempts, d.channel, d.destination, d.reach_id, d.fallback, d.created_at, d.held_since";

/// One queue per device: a push subscription, or an e-mail address or phone number on its channel.
/// True when an undelivered delivery `e` was written before `d` to the same device.
const EARLIER_IN_QUEUE: &str = "e.status in ('pending', 'sending') and e.channel = d.channel \
     and (e.subscription_id = d.subscription_id or (d.subscription_id is null and e.destination = d.destination)) \
     and (e.queue_order < d.queue_order or (e.queue_order = d.queue_order and e.delivery_id < d.delivery_id))";

/// ... and `e` has failed before, or waits behind one that has: the messages whose order is at stake.
/// Messages on their first try go out together, as written at about the same moment; a message
/// never overtakes one that is being retried.
const RETRYING: &str = "(e.attempts > 0 or e.held_since is not null)";

/// An earlier delivery of `d`'s queue being retried that stops `d` going out now: claimed by someone
/// else, or waiting for its next try.
const BLOCKED_BY_EARLIER: &str = "exists (select 1 from deliveries e where {EARLIER_IN_QUEUE} and {RETRYING} \
     and ((e.status = 'sending' and e.lease_until >= $1) or (e.status = 'pending' and e.next_attempt_at > $1)))";

/// Claim up to `limit` deliveries that are due (or whose claim lapsed), in the order they were
/// written. A delivery is claimed only with every earlier one of its device that is being retried,
/// so a later message never overtakes an earlier one that is waiting to be retried or in someone
/// else's hands; the deliverer sends such a device's claimed messages one after another.
pub async fn claim(tx: &mut WriteTx, now: Timestamp, limit: i64) -> Result<Vec<Claimed>, ApiError> {
    hold_behind_retries(tx, now).await?;
    let lock = match tx.backend {
        Backend::Postgres => " for update of d skip locked",
        Backend::Sqlite => "",
    };
    let blocked = BLOCKED_BY_EARLIER.replace("{EARLIER_IN_QUEUE}", EARLIER_IN_QUEUE).replace("{RETRYING}", RETRYING);
    let sql = format!(
        "select {CLAIM_COLUMNS} \
         from deliveries d left join push_subscriptions s on s.subscription_id = d.subscription_id \
         where ((d.status = 'pending' and d.next_attempt_at <= $1) or (d.status = 'sending' and d.lease_until < $1)) \
         and not {blocked} \
         order by d.queue_order, d.delivery_id limit {limit}{lock}"
    );
    let rows: Vec<ClaimRow> = sqlx::query_as(&sql).bind(to_millis(now)).fetch_all(tx.conn()).await?;
    let mut claimed = rows.into_iter().map(claimed_from).collect::<Result<Vec<_>, _>>()?;
    if tx.backend == Backend::Postgres && !claimed.is_empty() {
        // Another process may hold an earlier, retried delivery of a device right now (its claim not
        // yet committed, so it was skipped above, not seen as claimed): leave that device's later ones.
        let ids: Vec<String> = claimed.iter().map(|d| d.id.to_string()).collect();
        let list = (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "select d.delivery_id from deliveries d where d.delivery_id in ({list}) and exists \
             (select 1 from deliveries e where {EARLIER_IN_QUEUE} and {RETRYING} and e.delivery_id not in ({list}))"
        );
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for id in &ids {
            query = query.bind(id);
        }
        let overtaking: Vec<(String,)> = query.fetch_all(tx.conn()).await?;
        claimed.retain(|d| !overtaking.iter().any(|(id,)| *id == d.id.to_string()));
    }
    for delivery in &claimed {
        sqlx::query("update deliveries set status = 'sending', lease_until = $1 where delivery_id = $2")
            .bind(to_millis(now) + LEASE_SECONDS * 1000)
            .bind(delivery.id.to_string())
            .execute(tx.conn())
            .await?;
    }
    Ok(claimed)
}

/// The device a delivery goes to: its queue. Deliveries of one queue are sent in order.
pub fn queue_of(delivery: &Claimed) -> (String, String) {
    let device = match (&delivery.subscription_id, &delivery.destination) {
        (Some(subscription), _) => subscription.to_string(),
        (None, Some(address)) => address.clone(),
        (None, None) => delivery.id.to_string(),
    };
    (delivery.channel.clone(), device)
}

/// Give back a claimed delivery that was not tried because an earlier one of its device must be
/// retried: it waits behind that one again, and no attempt is recorded.
pub async fn release(tx: &mut WriteTx, delivery: &Claimed) -> Result<(), ApiError> {
    sqlx::query(
        "update deliveries set status = 'pending', lease_until = null where delivery_id = $1 and status = 'sending'",
    )
    .bind(delivery.id.to_string())
    .execute(tx.conn())
    .await?;
    tx.wrote_deliveries = true;
    Ok(())
}

fn claimed_from(
    (
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
        created_at,
        held_since,
    ): ClaimRow,
) -> Result<Claimed, ApiError> {
    Ok(Claimed {
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
        created_at: from_millis(created_at),
        held: held_since.is_some(),
    })
}

/// Deliveries waiting behind an earlier message to their device that has failed at least once are
/// marked held, and their reach falls back to the next channel now, as a failed first try would: the
/// person is reached another way while the device's queue waits for its push service.
async fn hold_behind_retries(tx: &mut WriteTx, now: Timestamp) -> Result<(), ApiError> {
    // No row lock here: the reach's rows are locked in their one order below, and the update checks
    // the row is still unheld, so two processes never hold (and fall back) the same delivery twice.
    let sql = format!(
        "select {CLAIM_COLUMNS} \
         from deliveries d left join push_subscriptions s on s.subscription_id = d.subscription_id \
         where d.status = 'pending' and d.attempts = 0 and d.held_since is null and d.next_attempt_at <= $1 \
         and exists (select 1 from deliveries e where {EARLIER_IN_QUEUE} and e.attempts > 0) \
         order by d.queue_order limit 100"
    );
    let rows: Vec<ClaimRow> = sqlx::query_as(&sql).bind(to_millis(now)).fetch_all(tx.conn()).await?;
    for row in rows {
        let delivery = claimed_from(row)?;
        lock_reach(tx, &delivery).await?;
        let held = sqlx::query(
            "update deliveries set held_since = $1, \
             last_error = 'held behind an earlier message to this device, which is being retried' \
             where delivery_id = $2 and held_since is null and status = 'pending' and attempts = 0",
        )
        .bind(to_millis(now))
        .bind(delivery.id.to_string())
        .execute(tx.conn())
        .await?
        .rows_affected();
        if held == 1 {
            fall_back(tx, &delivery, now).await?;
        }
    }
    Ok(())
}

/// Lock every row of the reach, in one order, before writing any: see `fall_back`.
async fn lock_reach(tx: &mut WriteTx, delivery: &Claimed) -> Result<(), ApiError> {
    if let (Some(reach_id), Backend::Postgres) = (&delivery.reach_id, tx.backend) {
        sqlx::query("select delivery_id from deliveries where reach_id = $1 order by delivery_id for update")
            .bind(reach_id)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// When the deliverer next has something to do: the earliest due delivery not waiting behind a retry,
/// or the earliest lapsing claim. Deliveries behind a retry wait for it, not for a time.
pub async fn next_due(pool: &sqlx::AnyPool) -> Result<Option<Timestamp>, ApiError> {
    let sql = format!(
        "select min(case when d.status = 'pending' then d.next_attempt_at else d.lease_until end) from deliveries d \
         where d.status in ('pending', 'sending') \
         and not exists (select 1 from deliveries e where {EARLIER_IN_QUEUE} and {RETRYING})"
    );
    let row: (Option<i64>,) = sqlx::query_as(&sql).fetch_one(pool).await?;
    Ok(row.0.map(from_millis))
}

/// The push service's origin with a trailing slash (`https://fcm.googleapis.com/`): the prefix every
/// endpoint of that service shares.
pub fn origin_prefix(endpoint: &str) -> Option<&str> {
    let scheme_end = endpoint.find("://")? + 3;
    let path_start = endpoint[scheme_end..].find('/')? + scheme_end;
    (path_start > scheme_end).then(|| &endpoint[..=path_start])
}

/// The service has just taken a message: deliveries to it waiting on backoff are tried now rather
/// than up to a backoff later, so alarms go out as soon as a push service is back after an outage.
async fn bring_forward(tx: &mut WriteTx, delivery: &Claimed, now: Timestamp) -> Result<(), ApiError> {
    let brought = match (delivery.channel.as_str(), delivery.endpoint.as_deref().and_then(origin_prefix)) {
        ("push", Some(origin)) => sqlx::query(
            "update deliveries set next_attempt_at = $1 where status = 'pending' and next_attempt_at > $1 \
                 and channel = 'push' and subscription_id in \
                 (select subscription_id from push_subscriptions where substr(endpoint, 1, cast($2 as integer)) = $3)",
        )
        .bind(to_millis(now))
        .bind(origin.len() as i64)
        .bind(origin)
        .execute(tx.conn())
        .await?
        .rows_affected(),
        ("push", None) => 0,
        // One configured SMTP server or SMS provider carries every message of its channel.
        (channel, _) => sqlx::query(
            "update deliveries set next_attempt_at = $1 where status = 'pending' and next_attempt_at > $1 \
                 and channel = $2",
        )
        .bind(to_millis(now))
        .bind(channel)
        .execute(tx.conn())
        .await?
        .rows_affected(),
    };
    if brought > 0 {
        tx.wrote_deliveries = true;
    }
    Ok(())
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
    lock_reach(tx, delivery).await?;
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
    if result.status == "sent" {
        bring_forward(tx, delivery, now).await?;
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
        ReachRow { mine, channel, status, attempts, held: false }
    }

    #[test]
    fn a_device_held_behind_a_retry_is_not_on_its_first_try() {
        // The other device has never been tried because an earlier message to it is being retried:
        // waiting for it would leave the person unreached, so move on.
        let held = ReachRow { held: true, ..row(false, "push", "pending", 0) };
        assert!(should_fall_back(&[row(true, "push", "pending", 0), held], "push", EMAIL_THEN_SMS));
    }

    #[test]
    fn the_origin_is_the_push_service_up_to_its_path() {
        assert_eq!(origin_prefix("https://fcm.googleapis.com/fcm/send/abc"), Some("https://fcm.googleapis.com/"));
        assert_eq!(origin_prefix("http://127.0.0.1:4100/push/x"), Some("http://127.0.0.1:4100/"));
        // Another port is another service.
        assert_ne!(origin_prefix("http://127.0.0.1:4101/push/x"), origin_prefix("http://127.0.0.1:4100/push/x"));
        assert_eq!(origin_prefix("https://example.com"), None);
        assert_eq!(origin_prefix("not a url"), None);
        assert_eq!(origin_prefix("https:///path"), None);
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
