//! The audit log: append-only and hash-chained per school, so any edit or deletion of a past entry
//! shows up when the chain is checked.

use homeward_shared::api::{AuditChainReport, AuditEntry};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::parse_id;
use crate::clock::{from_millis, to_millis};
use crate::db::WriteTx;
use crate::error::ApiError;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub struct Action<'a> {
    pub school_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub action: &'a str,
    pub subject: String,
    pub detail: String,
    pub at: Timestamp,
}

fn chain_hash(prev_hash: &str, seq: i64, at: i64, actor: &str, action: &str, subject: &str, detail: &str) -> String {
    // A JSON array is an unambiguous encoding of the fields.
    let material = serde_json::json!([prev_hash, seq, at, actor, action, subject, detail]).to_string();
    hex::encode(Sha256::digest(material.as_bytes()))
}

/// An entry waiting in a transaction to be chained in when it commits.
pub struct Pending {
    school_id: Uuid,
    actor_id: Option<Uuid>,
    action: String,
    subject: String,
    detail: String,
    at: Timestamp,
}

/// Append one entry to the school's chain as part of the caller's transaction. The entry is chained in
/// when the transaction commits ([`chain_pending`]), so the school's chain is locked only for the
/// moment before the commit rather than for the whole transaction: escalations of many visits in one
/// school fire side by side instead of queueing behind each other's audit entries.
#[tracing::instrument(skip_all, fields(action = entry.action))]
pub async fn append(tx: &mut WriteTx, entry: Action<'_>) -> Result<(), ApiError> {
    // Every audited action changes something a leader may be watching.
    tx.touch(entry.school_id);
    tx.audit.push(Pending {
        school_id: entry.school_id,
        actor_id: entry.actor_id,
        action: entry.action.to_string(),
        subject: entry.subject,
        detail: entry.detail,
        at: entry.at,
    });
    Ok(())
}

/// Rows per insert statement when chaining entries (9 parameters each: well inside both databases' limits).
const ROWS_PER_INSERT: usize = 50;

/// Chain in a transaction's pending entries, just before it commits: per school (in a fixed order, so
/// two transactions never wait on each other's schools in a cycle), lock the school's chain, read its
/// last entry and insert the new ones after it.
pub(crate) async fn chain_pending(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    pending: Vec<Pending>,
) -> Result<(), sqlx::Error> {
    let mut by_school: std::collections::BTreeMap<Uuid, Vec<Pending>> = std::collections::BTreeMap::new();
    for entry in pending {
        by_school.entry(entry.school_id).or_default().push(entry);
    }
    for (school_id, entries) in by_school {
        let school = school_id.to_string();
        // Serialise appends per school across server processes (PostgreSQL); SQLite has one writer.
        // `no key update`, not `update`: a row this transaction inserted that references the school (a
        // new session's foreign key) holds `key share` on it, and two such transactions taking
        // `for update` deadlock.
        let lock = match backend {
            crate::db::Backend::Postgres => "select school_id from schools where school_id = $1 for no key update",
            crate::db::Backend::Sqlite => "select school_id from schools where school_id = $1",
        };
        sqlx::query(lock).bind(&school).execute(&mut *conn).await?;
        let last: Option<(i64, String)> =
            sqlx::query_as("select seq, hash from audit_log where school_id = $1 order by seq desc limit 1")
                .bind(&school)
                .fetch_optional(&mut *conn)
                .await?;
        let (mut seq, mut prev_hash) = last.unwrap_or((0, GENESIS.to_string()));
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            seq += 1;
            let at = to_millis(entry.at);
            let actor = entry.actor_id.map(|a| a.to_string()).unwrap_or_default();
            let hash = chain_hash(&prev_hash, seq, at, &actor, &entry.action, &entry.subject, &entry.detail);
            rows.push((seq, at, entry, std::mem::replace(&mut prev_hash, hash.clone()), hash));
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let p = r * 9;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6,
                        p + 7,
                        p + 8,
                        p + 9
                    )
                })
                .collect();
            let sql = format!(
                "insert into audit_log (school_id, seq, at, actor_id, action, subject, detail, prev_hash, hash) values {}",
                values.join(", ")
            );
            let mut insert = sqlx::query(&sql);
            for (seq, at, entry, prev_hash, hash) in chunk {
                insert = insert
                    .bind(&school)
                    .bind(*seq)
                    .bind(*at)
                    .bind(entry.actor_id.map(|a| a.to_string()))
                    .bind(entry.action.as_str())
                    .bind(entry.subject.as_str())
                    .bind(entry.detail.as_str())
                    .bind(prev_hash.as_str())
                    .bind(hash.as_str());
            }
            insert.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

type Row = (i64, i64, Option<String>, String, String, String, String, String);

fn to_entry(row: Row) -> Result<AuditEntry, ApiError> {
    let (seq, at, actor, action, subject, detail, prev_hash, hash) = row;
    Ok(AuditEntry {
        seq,
        at: from_millis(at),
        actor_id: actor.filter(|a| !a.is_empty()).map(|a| parse_id(&a)).transpose()?,
        action,
        subject,
        detail,
        prev_hash,
        hash,
    })
}

pub async fn list(
    pool: &sqlx::AnyPool,
    school_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditEntry>, ApiError> {
    let rows: Vec<Row> = sqlx::query_as(
        "select seq, at, actor_id, action, subject, detail, prev_hash, hash from audit_log \
         where school_id = $1 and seq > $2 order by seq limit $3",
    )
    .bind(school_id.to_string())
    .bind(after_seq)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(to_entry).collect()
}

/// Walk the whole chain: every entry's hash must match its contents and its predecessor's hash.
pub async fn verify(pool: &sqlx::AnyPool, school_id: Uuid) -> Result<AuditChainReport, ApiError> {
    let mut expected_prev = GENESIS.to_string();
    let mut expected_seq = 1;
    let mut entries = 0;
    let page = 1_000;
    let mut after = 0;
    loop {
        let batch = list(pool, school_id, after, page).await?;
        let done = (batch.len() as i64) < page;
        for e in batch {
            entries += 1;
            let actor = e.actor_id.map(|a| a.to_string()).unwrap_or_default();
            let recomputed =
                chain_hash(&e.prev_hash, e.seq, e.at.timestamp_millis(), &actor, &e.action, &e.subject, &e.detail);
            let broken = if e.seq != expected_seq {
                Some(format!("entry {} is missing: the log jumps from {} to {}", expected_seq, expected_seq - 1, e.seq))
            } else if e.prev_hash != expected_prev {
                Some(format!("entry {} does not follow on from entry {}", e.seq, e.seq - 1))
            } else if recomputed != e.hash {
                Some(format!("entry {} has been altered since it was written", e.seq))
            } else {
                None
            };
            if let Some(message) = broken {
                return Ok(AuditChainReport { intact: false, entries, first_broken_seq: Some(e.seq), message });
            }
            expected_prev = e.hash;
            expected_seq += 1;
            after = e.seq;
        }
        if done {
            break;
        }
    }
    Ok(AuditChainReport {
        intact: true,
        entries,
        first_broken_seq: None,
        message: format!("the audit log is intact: all {entries} entries check out"),
    })
}
