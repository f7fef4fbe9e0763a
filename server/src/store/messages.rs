//! Messages about an alert between the responders and the worker ("Are you OK?" and the answer).

use homeward_shared::api::{AlertMessage, MessageDirection};
use uuid::Uuid;

use crate::Timestamp;
use crate::clock::{from_millis, to_millis};
use crate::db::WriteTx;
use crate::db::parse_id;
use crate::error::ApiError;

pub struct NewMessage<'a> {
    pub school_id: Uuid,
    pub alert_id: Uuid,
    pub session_id: Uuid,
    pub sender_id: Uuid,
    pub direction: MessageDirection,
    pub text: &'a str,
}

fn direction_str(direction: MessageDirection) -> &'static str {
    match direction {
        MessageDirection::ToWorker => "to_worker",
        MessageDirection::FromWorker => "from_worker",
    }
}

pub async fn insert(tx: &mut WriteTx, new: NewMessage<'_>, now: Timestamp) -> Result<Uuid, ApiError> {
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into alert_messages (message_id, school_id, alert_id, session_id, sender_id, direction, body, sent_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id.to_string())
    .bind(new.school_id.to_string())
    .bind(new.alert_id.to_string())
    .bind(new.session_id.to_string())
    .bind(new.sender_id.to_string())
    .bind(direction_str(new.direction))
    .bind(new.text)
    .bind(to_millis(now))
    .execute(tx.conn())
    .await?;
    tx.touch(new.school_id);
    Ok(id)
}

type Row = (String, String, String, String, String, String, String, i64);

const SELECT: &str = "select m.message_id, m.alert_id, m.session_id, m.direction, m.sender_id, u.name, m.body, m.sent_at \
    from alert_messages m join users u on u.user_id = m.sender_id";

fn to_message(row: Row) -> Result<AlertMessage, ApiError> {
    let (id, alert_id, session_id, direction, sender_id, sender_name, text, sent_at) = row;
    Ok(AlertMessage {
        id: parse_id(&id)?,
        alert_id: parse_id(&alert_id)?,
        session_id: parse_id(&session_id)?,
        direction: if direction == "from_worker" { MessageDirection::FromWorker } else { MessageDirection::ToWorker },
        sender_id: parse_id(&sender_id)?,
        sender_name,
        text,
        sent_at: from_millis(sent_at),
    })
}

pub async fn for_alert<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    alert_id: Uuid,
) -> Result<Vec<AlertMessage>, ApiError> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} where m.alert_id = $1 order by m.sent_at, m.message_id"))
        .bind(alert_id.to_string())
        .fetch_all(exec)
        .await?;
    rows.into_iter().map(to_message).collect()
}

pub async fn for_session<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    session_id: Uuid,
) -> Result<Vec<AlertMessage>, ApiError> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} where m.session_id = $1 order by m.sent_at, m.message_id"))
        .bind(session_id.to_string())
        .fetch_all(exec)
        .await?;
    rows.into_iter().map(to_message).collect()
}

/// The people who wrote to the worker about `alert_id`: the worker's answer goes to them.
pub async fn senders_to_worker(tx: &mut WriteTx, alert_id: Uuid) -> Result<Vec<Uuid>, ApiError> {
    let rows: Vec<(String,)> =
        sqlx::query_as("select distinct sender_id from alert_messages where alert_id = $1 and direction = 'to_worker'")
            .bind(alert_id.to_string())
            .fetch_all(tx.conn())
            .await?;
    rows.into_iter().map(|(id,)| parse_id(&id)).collect()
}

/// Check a message's text: trimmed, 1 to 500 characters.
pub fn text(raw: &str) -> Result<String, homeward_shared::FieldError> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(homeward_shared::FieldError::new("text", "a message is 1 to 500 characters"));
    }
    Ok(text.to_string())
}
