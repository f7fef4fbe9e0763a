//! The audit log: append-only and hash-chained per school, each entry's hash keyed with a secret kept
//! outside the database (HMAC-SHA256), and anchored once a day by a signed head written outside the
//! database too. An edited entry breaks the chain; a chain recomputed by someone who has the database
//! but not the key does not match the key; entries cut from the end no longer reach the signed head.
//!
//! Logs begun before the key existed were chained with plain SHA-256: those entries (before the seq
//! recorded in `audit_keyed_from`, and in every signed head) are still checked the old way.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use homeward_shared::Role;
use homeward_shared::api::{AuditChainReport, AuditEntry, AuditVerdict};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Timestamp;
use crate::clock::{from_millis, to_millis};
use crate::configuration::Settings;
use crate::db::parse_id;
use crate::db::{Db, WriteTx};
use crate::error::ApiError;
use crate::state::AppState;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The key's file in the data directory unless `HOMEWARD_AUDIT_KEY_FILE` names another.
pub const KEY_FILE: &str = "audit.key";
/// The signed daily heads, one JSON object a line, in the data directory.
pub const HEADS_FILE: &str = "audit-heads.jsonl";
/// A school's head is signed once in this long.
pub const HEAD_EVERY: chrono::Duration = chrono::Duration::hours(24);

type HmacSha256 = Hmac<Sha256>;

/// The secret that keys the chain's hashes and signs the daily heads. Read from a file at start,
/// never stored in the database; travels with the [`Db`] into every write transaction.
#[derive(Clone)]
pub struct AuditKey(Arc<KeyState>);

struct KeyState {
    chain: HmacSha256,
    /// A key of its own for the heads (derived from the same secret), so a head's signature can never
    /// pass for an entry's hash or the other way round.
    heads: HmacSha256,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

/// Where the key is kept: `HOMEWARD_AUDIT_KEY_FILE`, or `audit.key` in the data directory.
pub fn key_path(settings: &Settings) -> PathBuf {
    settings.audit_key_file.clone().unwrap_or_else(|| settings.data_dir.join(KEY_FILE))
}

/// Where the signed daily heads are appended: `audit-heads.jsonl` in the data directory.
pub fn heads_path(settings: &Settings) -> PathBuf {
    settings.data_dir.join(HEADS_FILE)
}

impl AuditKey {
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        let chain = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
        let mut derive = chain.clone();
        derive.update(b"homeward audit heads 1");
        let heads = HmacSha256::new_from_slice(&derive.finalize().into_bytes()).expect("any length");
        AuditKey(Arc::new(KeyState { chain, heads }))
    }

    /// The settings' key file, made with 32 random bytes (readable by this user only) if it does not
    /// exist yet. A key written by hand may also be 64 hexadecimal characters.
    pub fn for_settings(settings: &Settings) -> anyhow::Result<Self> {
        Self::load_or_create(&key_path(settings))
    }

    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(e).with_context(|| format!("cannot read the audit key {}", path.display())),
        }
    }

    fn parse(path: &Path, bytes: &[u8]) -> anyhow::Result<Self> {
        warn_if_readable_by_others(path);
        let mut secret = [0u8; 32];
        if bytes.len() == 32 {
            secret.copy_from_slice(bytes);
        } else {
            let text = std::str::from_utf8(bytes).unwrap_or_default().trim();
            let decoded = hex::decode(text).ok().filter(|d| d.len() == 32).with_context(|| {
                format!(
                    "the audit key {} must be 32 bytes (or 64 hexadecimal characters), not {} bytes",
                    path.display(),
                    bytes.len()
                )
            })?;
            secret.copy_from_slice(&decoded);
        }
        Ok(Self::from_bytes(&secret))
    }

    /// Write the new key beside its place and link it in, so two processes starting at once on the
    /// same directory end up with the same key, and nobody ever reads half a key.
    fn create(path: &Path) -> anyhow::Result<Self> {
        use rand::RngCore;
        use std::io::Write;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).with_context(|| format!("cannot make {}", parent.display()))?;
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temporary = parent.join(format!(".{name}.{}.new", Uuid::new_v4().simple()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&temporary).and_then(|mut file| {
            file.write_all(&secret)?;
            file.sync_all()
        });
        let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                if let Ok(dir) = std::fs::File::open(parent) {
                    let _ = dir.sync_all();
                }
                tracing::info!(path = %path.display(), "made a new audit key: back it up apart from the database");
                Ok(Self::from_bytes(&secret))
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("cannot read the audit key {}", path.display()))?;
                Self::parse(path, &bytes)
            }
            Err(e) => Err(e).with_context(|| format!("cannot write the audit key {}", path.display())),
        }
    }

    /// An entry's keyed hash.
    pub fn keyed_hash(&self, material: &Material<'_>) -> String {
        let mut mac = self.0.chain.clone();
        mac.update(material.encode().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn keyed_hash_matches(&self, material: &Material<'_>, hash: &str) -> bool {
        let Ok(expected) = hex::decode(hash) else { return false };
        let mut mac = self.0.chain.clone();
        mac.update(material.encode().as_bytes());
        mac.verify_slice(&expected).is_ok()
    }

    fn head_mac(&self, head: &SignedHead) -> HmacSha256 {
        let material = serde_json::json!([
            "homeward audit head 1",
            head.school_id.to_string(),
            head.at.timestamp_millis(),
            head.count,
            head.hash,
            head.keyed_from
        ]);
        let mut mac = self.0.heads.clone();
        mac.update(material.to_string().as_bytes());
        mac
    }

    pub fn sign_head(&self, head: &SignedHead) -> String {
        hex::encode(self.head_mac(head).finalize().into_bytes())
    }

    pub fn head_is_signed(&self, head: &SignedHead) -> bool {
        hex::decode(&head.signature).is_ok_and(|signature| self.head_mac(head).verify_slice(&signature).is_ok())
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the audit key can be read by other users: chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// What an entry's hash covers: its predecessor's hash and its own contents.
pub struct Material<'a> {
    pub prev_hash: &'a str,
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// The actor's id, or empty.
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub detail: &'a str,
}

impl<'a> Material<'a> {
    /// What a stored entry's hash covers; `actor` is its actor's id as text (empty for none).
    pub fn of(entry: &'a AuditEntry, actor: &'a str) -> Self {
        Material {
            prev_hash: &entry.prev_hash,
            seq: entry.seq,
            at: entry.at.timestamp_millis(),
            actor,
            action: &entry.action,
            subject: &entry.subject,
            detail: &entry.detail,
        }
    }
}

impl Material<'_> {
    fn encode(&self) -> String {
        // A JSON array is an unambiguous encoding of the fields.
        serde_json::json!([self.prev_hash, self.seq, self.at, self.actor, self.action, self.subject, self.detail])
            .to_string()
    }
}

/// The hash of the chain as it was before the key: plain SHA-256, which anyone can recompute.
pub fn unkeyed_hash(material: &Material<'_>) -> String {
    hex::encode(Sha256::digest(material.encode().as_bytes()))
}

pub struct Action<'a> {
    pub school_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub action: &'a str,
    pub subject: String,
    pub detail: String,
    pub at: Timestamp,
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
/// last entry and insert the new ones after it, their hashes keyed with `key`.
pub(crate) async fn chain_pending(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    key: &AuditKey,
    pending: Vec<Pending>,
) -> Result<(), sqlx::Error> {
    let mut by_school: BTreeMap<Uuid, Vec<Pending>> = BTreeMap::new();
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
            let hash = key.keyed_hash(&Material {
                prev_hash: &prev_hash,
                seq,
                at,
                actor: &actor,
                action: &entry.action,
                subject: &entry.subject,
                detail: &entry.detail,
            });
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

/// The first entry of the school's log that is keyed: entries before it were written before the key
/// existed (recorded by the migration that brought the key in; 1 for a log begun since).
pub async fn keyed_from(pool: &sqlx::AnyPool, school_id: Uuid) -> Result<i64, ApiError> {
    let row: Option<(i64,)> = sqlx::query_as("select seq from audit_keyed_from where school_id = $1")
        .bind(school_id.to_string())
        .fetch_optional(pool)
        .await?;
    Ok(row.map_or(1, |(seq,)| seq))
}

// ----------------------------------------------------------------------------------------------------
// The signed daily heads.

/// One line of the heads file: how far a school's log reached when it was signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedHead {
    pub school_id: Uuid,
    pub at: DateTime<Utc>,
    /// Entries in the log then (its last entry's seq).
    pub count: i64,
    /// The last entry's hash.
    pub hash: String,
    /// The first keyed entry (see [`keyed_from`]).
    pub keyed_from: i64,
    /// HMAC-SHA256 of the fields above with the heads' key, hex.
    pub signature: String,
}

/// Every head in the file (none if there is no file yet), and how many lines could not be read.
pub fn read_heads(path: &Path) -> anyhow::Result<(Vec<SignedHead>, usize)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e).with_context(|| format!("cannot read the audit heads {}", path.display())),
    };
    let mut heads = Vec::new();
    let mut unreadable = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<SignedHead>(line) {
            Ok(head) => heads.push(head),
            Err(_) => unreadable += 1,
        }
    }
    Ok((heads, unreadable))
}

async fn read_heads_off_thread(path: PathBuf) -> Result<(Vec<SignedHead>, usize), ApiError> {
    tokio::task::spawn_blocking(move || read_heads(&path))
        .await
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("reading the audit heads stopped: {e}")))?
        .map_err(ApiError::Unexpected)
}

fn append_heads(path: &Path, heads: &[SignedHead]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut text = String::new();
    for head in heads {
        text.push_str(&serde_json::to_string(head)?);
        text.push('\n');
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    // One write for all the lines: processes sharing the file never interleave within a line.
    file.write_all(text.as_bytes())?;
    file.sync_data()?;
    Ok(())
}

/// Sign the head of every school's log not signed in the last day: append it to the heads file and
/// e-mail it to the school's DSLs (when e-mail is configured; a failure is logged, never fatal).
/// Returns how many heads were signed.
pub async fn record_heads(state: &AppState, now: Timestamp) -> Result<usize, ApiError> {
    let path = heads_path(&state.settings);
    let (existing, _) = read_heads_off_thread(path.clone()).await?;
    let mut newest: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for head in existing {
        let at = newest.entry(head.school_id).or_insert(head.at);
        *at = (*at).max(head.at);
    }
    let at = from_millis(to_millis(now));
    let schools: Vec<(String, String)> =
        sqlx::query_as("select school_id, name from schools order by school_id").fetch_all(&state.db.pool).await?;
    let mut signed = Vec::new();
    for (school, name) in schools {
        let school_id = parse_id(&school)?;
        if newest.get(&school_id).is_some_and(|last| at - *last < HEAD_EVERY) {
            continue;
        }
        let last: Option<(i64, String)> =
            sqlx::query_as("select seq, hash from audit_log where school_id = $1 order by seq desc limit 1")
                .bind(&school)
                .fetch_optional(&state.db.pool)
                .await?;
        let Some((count, hash)) = last else { continue };
        let keyed_from = keyed_from(&state.db.pool, school_id).await?;
        let mut head = SignedHead { school_id, at, count, hash, keyed_from, signature: String::new() };
        head.signature = state.db.audit_key.sign_head(&head);
        signed.push((head, name));
    }
    if signed.is_empty() {
        return Ok(0);
    }
    let heads: Vec<SignedHead> = signed.iter().map(|(h, _)| h.clone()).collect();
    let written = path.clone();
    tokio::task::spawn_blocking(move || append_heads(&written, &heads))
        .await
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("writing the audit heads stopped: {e}")))?
        .with_context(|| format!("cannot append to the audit heads {}", path.display()))?;
    if let Some(email) = state.channels.email.clone() {
        let mut mails = Vec::new();
        for (head, name) in &signed {
            let rows: Vec<(String, String)> =
                sqlx::query_as("select email, roles from users where school_id = $1 and active = 1")
                    .bind(head.school_id.to_string())
                    .fetch_all(&state.db.pool)
                    .await?;
            let (subject, text) = head_mail(head, name);
            for (address, roles) in rows {
                if crate::store::users::decode_roles(&roles).contains(&Role::Dsl) {
                    mails.push((address, subject.clone(), text.clone()));
                }
            }
        }
        // Off the scheduler's loop: a slow mail server must not hold back a due escalation.
        tokio::spawn(async move {
            for (address, subject, text) in mails {
                let to = crate::notify::Address::Email(address.clone());
                match email.send_text(&to, &subject, &text).await {
                    crate::notify::SendOutcome::Delivered { .. } => {}
                    outcome => tracing::warn!(?outcome, "could not e-mail the audit log's signed head to a DSL"),
                }
            }
        });
    }
    Ok(signed.len())
}

fn head_mail(head: &SignedHead, school: &str) -> (String, String) {
    let subject = format!("Homeward audit log of {school}, {}", head.at.format("%Y-%m-%d"));
    let text = format!(
        "The audit log of {school} as it stood at {at}, signed by the Homeward server:\n\n\
         Entries: {count}\nLast entry's hash: {hash}\nSignature: {signature}\n\n\
         Keep this e-mail. Homeward checks the log against these signed heads, so entries cut from the \
         end of the log show even if the database is changed; this message is a copy no one with \
         access to the server can alter. Entry {count} in the app's audit log should always show the \
         hash above.\n\nThe signed record: {record}\n-- Homeward\n",
        at = head.at.format("%Y-%m-%d %H:%M UTC"),
        count = head.count,
        hash = head.hash,
        signature = head.signature,
        record = serde_json::to_string(head).unwrap_or_default(),
    );
    (subject, text)
}

// ----------------------------------------------------------------------------------------------------
// The check.

/// A problem found in the chain itself (before the heads are looked at).
struct Break {
    seq: i64,
    verdict: AuditVerdict,
    message: String,
}

/// Walk the whole chain: every entry must follow on from its predecessor and its hash must match its
/// contents with the key (the unkeyed hash for entries from before the key); then the log must still
/// reach every signed head in `heads_path` (see [`AuditVerdict`]).
pub async fn verify(db: &Db, heads_path: &Path, school_id: Uuid) -> Result<AuditChainReport, ApiError> {
    let key = &db.audit_key;
    let (all_heads, unreadable) = read_heads_off_thread(heads_path.to_path_buf()).await?;
    let mut unsigned = unreadable;
    let mut heads = Vec::new();
    for head in all_heads.into_iter().filter(|h| h.school_id == school_id) {
        if key.head_is_signed(&head) {
            heads.push(head);
        } else {
            unsigned += 1;
        }
    }
    if unsigned > 0 {
        tracing::warn!(lines = unsigned, path = %heads_path.display(), "audit heads that do not verify were ignored");
    }
    let keyed_from = keyed_from(&db.pool, school_id).await?;
    // The hash each signed head says its last entry had.
    let mut checkpoints: BTreeMap<i64, Vec<&SignedHead>> = BTreeMap::new();
    for head in &heads {
        checkpoints.entry(head.count).or_default().push(head);
    }
    let mut missed_head: Option<&SignedHead> = None;

    let mut expected_prev = GENESIS.to_string();
    let mut expected_seq = 1;
    let mut entries = 0;
    // The first keyed entry whose hash does not match with the key; whether any such entry matches
    // without it (recomputed with the old formula); and whether every keyed entry since has failed too.
    let mut first_unkeyed: Option<i64> = None;
    let mut recomputed_without_key = false;
    let mut failing_since_first = 0;
    let mut all_failing_since_first = true;
    let mut broken: Option<Break> = None;
    let page = 1_000;
    let mut after = 0;
    'walk: loop {
        let batch = list(&db.pool, school_id, after, page).await?;
        let done = (batch.len() as i64) < page;
        for e in batch {
            entries += 1;
            let actor = e.actor_id.map(|a| a.to_string()).unwrap_or_default();
            let material = Material::of(&e, &actor);
            let structural = if e.seq != expected_seq {
                Some(format!("entry {} is missing: the log jumps from {} to {}", expected_seq, expected_seq - 1, e.seq))
            } else if e.prev_hash != expected_prev {
                Some(format!("entry {} does not follow on from entry {}", e.seq, e.seq - 1))
            } else {
                None
            };
            if let Some(message) = structural {
                broken = Some(Break { seq: e.seq, verdict: AuditVerdict::Altered, message });
                break 'walk;
            }
            if e.seq < keyed_from {
                if unkeyed_hash(&material) != e.hash {
                    broken = Some(Break {
                        seq: e.seq,
                        verdict: AuditVerdict::Altered,
                        message: format!("entry {} has been altered since it was written", e.seq),
                    });
                    break 'walk;
                }
            } else if key.keyed_hash_matches(&material, &e.hash) {
                if first_unkeyed.is_some() {
                    all_failing_since_first = false;
                }
            } else {
                first_unkeyed.get_or_insert(e.seq);
                failing_since_first += 1;
                recomputed_without_key |= unkeyed_hash(&material) == e.hash;
            }
            if let Some(signed) = checkpoints.get(&e.seq)
                && missed_head.is_none()
                && let Some(head) = signed.iter().find(|h| h.hash != e.hash)
            {
                missed_head = Some(head);
            }
            expected_prev = e.hash;
            expected_seq += 1;
            after = e.seq;
        }
        if done {
            break;
        }
    }

    // A bad hash before a structural break is the first thing wrong.
    if let Some(seq) = first_unkeyed.filter(|seq| broken.as_ref().is_none_or(|b| *seq < b.seq)) {
        let chain_whole = broken.is_none();
        // The chain hangs together but not with the key: recomputed by someone without it (the old
        // formula), or from this entry to the end with another key. An entry edited in place leaves the
        // entries after it checking out.
        let rewritten = chain_whole && (recomputed_without_key || (all_failing_since_first && failing_since_first > 1));
        broken = Some(if rewritten {
            Break {
                seq,
                verdict: AuditVerdict::Rewritten,
                message: format!(
                    "the log was rewritten from entry {seq} on: its hashes were recomputed without the server's key, \
                     so the entries from {seq} on cannot be trusted"
                ),
            }
        } else {
            Break {
                seq,
                verdict: AuditVerdict::Altered,
                message: format!("entry {seq} has been altered since it was written"),
            }
        });
    }
    let newest_head_at = heads.iter().map(|h| h.at).max();
    let report = |verdict: AuditVerdict, first_broken_seq: Option<i64>, message: String| AuditChainReport {
        intact: verdict == AuditVerdict::Intact,
        entries,
        first_broken_seq,
        message,
        verdict,
        signed_heads: heads.len() as i64,
        newest_head_at,
    };
    if let Some(b) = broken {
        return Ok(report(b.verdict, Some(b.seq), b.message));
    }
    // The point where the keyed chain begins is in every signed head: moving it (to pass recomputed
    // entries off as old, unkeyed ones) is a rewrite.
    if let Some(head) = heads.iter().find(|h| h.keyed_from != keyed_from) {
        let seq = head.keyed_from.min(keyed_from);
        return Ok(report(
            AuditVerdict::Rewritten,
            Some(seq),
            format!(
                "the log was rewritten: the head signed on {} says the keyed log begins at entry {}, \
                 but the database now says entry {keyed_from}",
                head.at.format("%Y-%m-%d %H:%M UTC"),
                head.keyed_from
            ),
        ));
    }
    // Entries cut from the end: a head names more entries than there are, or (entries deleted and new
    // ones written since) an entry that is not the one signed.
    let cut = heads
        .iter()
        .filter(|h| h.count > entries)
        .max_by_key(|h| h.count)
        .map(|head| (head, entries + 1, format!("the log now has only {entries}")))
        .or_else(|| {
            missed_head.map(|head| (head, head.count, format!("entry {} is no longer the one signed then", head.count)))
        });
    if let Some((head, seq, now_has)) = cut {
        return Ok(report(
            AuditVerdict::Truncated,
            Some(seq),
            format!(
                "entries were deleted from the end of the log: the head signed on {} names {} entries, but {now_has}",
                head.at.format("%Y-%m-%d %H:%M UTC"),
                head.count
            ),
        ));
    }
    let mut message = format!("the audit log is intact: all {entries} entries check out");
    if keyed_from > 1 {
        message.push_str(&format!(
            " (entries 1 to {} were written before the log was keyed and are checked the old way)",
            keyed_from - 1
        ));
    }
    match heads.iter().max_by_key(|h| (h.at, h.count)) {
        Some(newest) => message.push_str(&format!(
            ", and it reaches the head signed on {} ({} entries)",
            newest.at.format("%Y-%m-%d %H:%M UTC"),
            newest.count
        )),
        None => message.push_str("; no daily head has been signed yet"),
    }
    if unsigned > 0 {
        message.push_str(&format!(" ({unsigned} lines of the heads file do not verify and were ignored)"));
    }
    Ok(report(AuditVerdict::Intact, None, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material<'a>(prev_hash: &'a str, detail: &'a str) -> Material<'a> {
        Material { prev_hash, seq: 1, at: 1_700_000_000_000, actor: "", action: "a", subject: "s", detail }
    }

    #[test]
    fn audit_hashes_are_keyed_and_differ_from_the_old_formula() {
        let key = AuditKey::from_bytes(&[7; 32]);
        let other = AuditKey::from_bytes(&[8; 32]);
        let m = material(GENESIS, "d");
        let keyed = key.keyed_hash(&m);
        assert_eq!(keyed.len(), 64);
        assert_ne!(keyed, unkeyed_hash(&m));
        assert_ne!(keyed, other.keyed_hash(&m));
        assert!(key.keyed_hash_matches(&m, &keyed));
        assert!(!other.keyed_hash_matches(&m, &keyed));
        assert!(!key.keyed_hash_matches(&material(GENESIS, "e"), &keyed));
        assert!(!key.keyed_hash_matches(&m, "not hex"));
    }

    #[test]
    fn audit_heads_verify_only_with_the_key_and_unchanged() {
        let key = AuditKey::from_bytes(&[7; 32]);
        let mut head = SignedHead {
            school_id: Uuid::from_u128(1),
            at: from_millis(1_700_000_000_123),
            count: 5,
            hash: "ab".repeat(32),
            keyed_from: 1,
            signature: String::new(),
        };
        head.signature = key.sign_head(&head);
        assert!(key.head_is_signed(&head));
        let line = serde_json::to_string(&head).unwrap();
        assert!(key.head_is_signed(&serde_json::from_str(&line).unwrap()));
        assert!(!AuditKey::from_bytes(&[8; 32]).head_is_signed(&head));
        // The heads' key is not the chain's key.
        assert_ne!(head.signature, key.keyed_hash(&material(GENESIS, "d")));
        for changed in [
            SignedHead { count: 4, ..head.clone() },
            SignedHead { keyed_from: 2, ..head.clone() },
            SignedHead { hash: "cd".repeat(32), ..head.clone() },
        ] {
            assert!(!key.head_is_signed(&changed));
        }
    }

    #[test]
    fn audit_key_files_are_made_once_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("homeward-audit-key-{}", Uuid::new_v4().simple()));
        let path = dir.join("nested").join("audit.key");
        let made = AuditKey::load_or_create(&path).expect("made");
        let bytes = std::fs::read(&path).expect("written");
        assert_eq!(bytes.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = AuditKey::load_or_create(&path).expect("read");
        let m = material(GENESIS, "d");
        assert_eq!(made.keyed_hash(&m), again.keyed_hash(&m));
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file is left");
        // Hexadecimal, written by hand, works too; anything else is refused.
        let hex_path = dir.join("hex.key");
        std::fs::write(&hex_path, format!("{}\n", hex::encode(&bytes))).unwrap();
        assert_eq!(AuditKey::load_or_create(&hex_path).unwrap().keyed_hash(&m), made.keyed_hash(&m));
        std::fs::write(&hex_path, "short").unwrap();
        let err = AuditKey::load_or_create(&hex_path).unwrap_err().to_string();
        assert!(err.contains("must be 32 bytes"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
