//! The deliveries outbox: one row per message to one device, written in the same transaction as the
//! alert change that causes it, so a crash can lose neither.

use std::collections::BTreeSet;

use homeward_shared::api::{DeliveryAttemptView, DeliveryView, PushPayload};
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

/// Queue `payload` for every device of every person in `people`. A person with no device gets a
/// `no_channel` row, so the alert shows who could not be reached; it never holds up the ladder.
pub async fn enqueue(
    tx: &mut WriteTx,
    alert: &Alert,
    people: &BTreeSet<Uuid>,
    purpose: Purpose,
    step: Option<i64>,
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
    for person in people {
        let devices: Vec<(String,)> =
            sqlx::query_as("select subscription_id from push_subscriptions where user_id = $1 order by created_at")
                .bind(person.to_string())
                .fetch_all(tx.conn())
                .await?;
        let targets: Vec<Option<String>> =
            if devices.is_empty() { vec![None] } else { devices.into_iter().map(|(id,)| Some(id)).collect() };
        for subscription in targets {
            let status = if subscription.is_some() { "pending" } else { "no_channel" };
            sqlx::query(
                "insert into deliveries (delivery_id, school_id, alert_id, recipient_id, subscription_id, channel, purpose, \
                 step_index, payload, urgency, ttl_seconds, topic, status, attempts, next_attempt_at, created_at) \
                 values ($1, $2, $3, $4, $5, 'push', $6, $7, $8, $9, $10, $11, $12, 0, $13, $13)",
            )
            .bind(Uuid::new_v4().to_string())
            .bind(alert.school_id.to_string())
            .bind(alert.id.to_string())
            .bind(person.to_string())
            .bind(subscription)
            .bind(purpose.as_str())
            .bind(step)
            .bind(&body)
            .bind(urgency)
            .bind(ALERT_TTL_SECONDS)
            .bind(&topic)
            .bind(status)
            .bind(to_millis(now))
            .execute(tx.conn())
            .await?;
        }
    }
    tx.wrote_deliveries = true;
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

type ClaimRow =
    (String, Option<String>, Option<String>, Option<String>, Option<String>, String, String, i64, String, i64);

/// Claim up to `limit` deliveries that are due (or whose claim lapsed), oldest first.
pub async fn claim(tx: &mut WriteTx, now: Timestamp, limit: i64) -> Result<Vec<Claimed>, ApiError> {
    let lock = match tx.backend {
        Backend::Postgres => " for update of d skip locked",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "select d.delivery_id, d.subscription_id, s.endpoint, s.p256dh, s.auth, d.payload, d.urgency, d.ttl_seconds, d.topic, d.attempts \
         from deliveries d left join push_subscriptions s on s.subscription_id = d.subscription_id \
         where (d.status = 'pending' and d.next_attempt_at <= $1) or (d.status = 'sending' and d.lease_until < $1) \
         order by d.next_attempt_at limit {limit}{lock}"
    );
    let rows: Vec<ClaimRow> = sqlx::query_as(&sql).bind(to_millis(now)).fetch_all(tx.conn()).await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for (id, subscription_id, endpoint, p256dh, auth, payload, urgency, ttl_seconds, topic, attempts) in rows {
        sqlx::query("update deliveries set status = 'sending', lease_until = $1 where delivery_id = $2")
            .bind(to_millis(now) + LEASE_SECONDS * 1000)
            .bind(&id)
            .execute(tx.conn())
            .await?;
        claimed.push(Claimed {
            id: parse_id(&id)?,
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
                recipient_name: name.unwrap_or_else(|| "unknown".into()),
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
            if rows.iter().all(|r| r.status == "no_channel") {
                return format!("{label}: {name} has no device that can receive alerts");
            }
            let sent: Vec<&&DeliveryView> = rows.iter().filter(|r| r.status == "sent").collect();
            let mut line = format!("{label}: sent to {} of {name}'s {} device(s)", sent.len(), rows.len());
            if let Some(at) = sent.iter().filter_map(|r| r.sent_at).max() {
                line.push_str(&format!(" at {}", at.format("%H:%M:%S")));
            }
            let gone = rows.iter().filter(|r| r.status == "gone").count();
            if gone > 0 {
                line.push_str(&format!("; {gone} endpoint(s) gone"));
            }
            let waiting = rows.iter().filter(|r| matches!(r.status.as_str(), "pending" | "sending")).count();
            if waiting > 0 {
                line.push_str(&format!("; {waiting} still trying"));
            }
            let failed = rows.iter().filter(|r| r.status == "failed").count();
            if failed > 0 {
                line.push_str(&format!("; {failed} failed"));
            }
            line
        })
        .collect()
}
