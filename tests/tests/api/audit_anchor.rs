//! The audit log's anchor: its hashes keyed with a secret kept outside the database, and a head signed
//! once a day and written outside it. Someone with the database alone can alter an entry, recompute the
//! whole chain or cut its tail: each shows, by name, in `GET /api/v1/audit/verify`.

use std::path::PathBuf;
use std::time::Duration as StdDuration;

use chrono::Duration;
use homeward_server::store::audit::{self, AuditKey, Material, SignedHead};
use homeward_shared::Role;
use homeward_shared::api::{AuditChainReport, AuditEntry, AuditVerdict, CreateUserRequest};
use homeward_shared::client::ApiClient;
use homeward_tests::smtp_sink::SmtpSink;
use homeward_tests::{Backend, Member, PASSWORD, School, TestApp, on_both_databases, spawn_app, spawn_app_shifted};
use uuid::Uuid;

/// Long enough for a loaded machine; the waits end as soon as what they wait for is there.
const WAIT: StdDuration = StdDuration::from_secs(30);

on_both_databases!(
    an_untouched_log_is_intact_and_its_signed_head_is_kept_and_mailed,
    an_altered_entry_is_reported_altered,
    a_chain_recomputed_without_the_key_is_reported_rewritten,
    entries_cut_from_the_end_after_a_signed_head_are_reported_truncated,
    an_upgraded_log_keeps_its_unkeyed_entries_and_cannot_be_passed_off_as_unkeyed,
    the_key_is_made_private_at_first_start_and_reused_after_a_restart,
    the_openapi_document_describes_the_verdicts,
);

fn new_user(email: &str) -> CreateUserRequest {
    CreateUserRequest {
        email: email.into(),
        name: "New Person".into(),
        password: PASSWORD.into(),
        roles: vec![Role::Staff],
        line_manager_id: None,
        phone: None,
    }
}

/// A few more entries in the school's log (one per person added).
async fn add_people(admin: &ApiClient, n: usize) {
    for _ in 0..n {
        let email = format!("person-{}@school.test", &Uuid::new_v4().simple().to_string()[..8]);
        admin.create_user(&new_user(&email)).await.expect("add a person");
    }
}

async fn verify(reader: &ApiClient) -> AuditChainReport {
    reader.verify_audit().await.expect("verify the audit log")
}

async fn entries(app: &TestApp, school: &School) -> Vec<AuditEntry> {
    audit::list(&app.state.db.pool, school.id, 0, 100_000).await.expect("read the log")
}

/// `member` signed in again (a jump of the clock past a day outlives the fixture's sign-in).
async fn sign_in_again(app: &TestApp, member: &Member) -> ApiClient {
    app.api.login(&member.user.email, PASSWORD).await.expect("sign in again").0
}

fn heads_file(app: &TestApp) -> PathBuf {
    app.db.data_dir.join("audit-heads.jsonl")
}

fn heads_of(app: &TestApp, school: &School) -> Vec<SignedHead> {
    let (heads, unreadable) = audit::read_heads(&heads_file(app)).expect("the heads file is readable");
    assert_eq!(unreadable, 0, "every line of the heads file reads");
    heads.into_iter().filter(|h| h.school_id == school.id).collect()
}

/// Wait for the scheduler to sign a head of `school`'s log at or after `since`.
async fn head_signed_since(app: &TestApp, school: &School, since: chrono::DateTime<chrono::Utc>) -> SignedHead {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(head) = heads_of(app, school).into_iter().find(|h| h.at >= since) {
            return head;
        }
        assert!(tokio::time::Instant::now() < deadline, "no head of the school's log signed within {WAIT:?}");
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
}

/// Jump a day on and wait for the scheduler's daily head of `school`'s log.
async fn a_day_on_with_a_signed_head(app: &TestApp, school: &School) -> SignedHead {
    // The scheduler's first look is ten minutes after start, then hourly; the reference time is taken
    // after the jump, and the head signed by the look that follows is at or after it.
    // Taken before the clock moves: the scheduler may record the head before the next line runs.
    let since = app.now() + Duration::days(1);
    app.advance(Duration::days(1) + Duration::minutes(1));
    head_signed_since(app, school, since).await
}

/// Get round the database's own guards on the audit log, as someone with the database's keys can.
async fn lift_the_guards(app: &TestApp, backend: Backend) {
    let statements: &[&str] = match backend {
        Backend::Sqlite => &[
            "drop trigger if exists audit_log_no_update",
            "drop trigger if exists audit_log_no_delete",
            "drop trigger if exists audit_keyed_from_no_insert",
            "drop trigger if exists audit_keyed_from_no_update",
            "drop trigger if exists audit_keyed_from_no_delete",
        ],
        Backend::Postgres => &[
            "alter table audit_log disable trigger audit_log_no_update",
            "alter table audit_keyed_from disable trigger audit_keyed_from_fixed",
        ],
    };
    for sql in statements {
        sqlx::query(sql).execute(&app.state.db.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Recompute every hash of `school`'s chain with `hash`, from the first entry on, after changing the
/// detail of entry `edit` (the point of a rewrite: hide an edit).
async fn rewrite_chain(app: &TestApp, school: &School, edit: Option<i64>, hash: impl Fn(&Material<'_>) -> String) {
    let mut prev = "0".repeat(64);
    for e in entries(app, school).await {
        let detail = if Some(e.seq) == edit { "nothing to see here".to_string() } else { e.detail.clone() };
        let actor = e.actor_id.map(|a| a.to_string()).unwrap_or_default();
        let new = hash(&Material { prev_hash: &prev, detail: &detail, ..Material::of(&e, &actor) });
        sqlx::query("update audit_log set detail = $1, prev_hash = $2, hash = $3 where school_id = $4 and seq = $5")
            .bind(&detail)
            .bind(&prev)
            .bind(&new)
            .bind(school.id.to_string())
            .bind(e.seq)
            .execute(&app.state.db.pool)
            .await
            .expect("rewrite an entry");
        prev = new;
    }
}

async fn delete_from(app: &TestApp, school: &School, from_seq: i64) {
    sqlx::query("delete from audit_log where school_id = $1 and seq >= $2")
        .bind(school.id.to_string())
        .bind(from_seq)
        .execute(&app.state.db.pool)
        .await
        .expect("delete the newest entries");
}

fn assert_verdict(report: &AuditChainReport, verdict: AuditVerdict, first_broken_seq: Option<i64>) {
    assert_eq!(report.verdict, verdict, "{report:?}");
    assert_eq!(report.intact, verdict == AuditVerdict::Intact, "{report:?}");
    assert_eq!(report.first_broken_seq, first_broken_seq, "{report:?}");
    assert!(!report.message.contains('{') && !report.message.contains("Error"), "a plain message: {report:?}");
}

/// An untouched log checks out, before and after its first signed head; the head is a line of the heads
/// file beside the database, signed with the key, naming the log's count and last hash; and the school's
/// DSL (only) has it by e-mail.
async fn an_untouched_log_is_intact_and_its_signed_head_is_kept_and_mailed(backend: Backend) {
    let smtp = SmtpSink::start().await;
    let smtp_url = smtp.url();
    let app = spawn_app_shifted(backend, move |s| s.email.smtp_url = Some(smtp_url)).await;
    let school = app.school("Anchor School").await;
    add_people(&school.admin.api, 3).await;
    let report = verify(&school.dsl.api).await;
    assert_verdict(&report, AuditVerdict::Intact, None);
    assert_eq!(report.entries, entries(&app, &school).await.len() as i64);
    // Every hash is keyed: none is the plain SHA-256 of its entry.
    for e in entries(&app, &school).await {
        let actor = e.actor_id.map(|a| a.to_string()).unwrap_or_default();
        let plain = audit::unkeyed_hash(&Material::of(&e, &actor));
        assert_ne!(plain, e.hash, "entry {} is keyed", e.seq);
    }

    let head = a_day_on_with_a_signed_head(&app, &school).await;
    let log = entries(&app, &school).await;
    let last = log.last().expect("entries");
    assert_eq!((head.count, head.hash.as_str(), head.keyed_from), (last.seq, last.hash.as_str(), 1));
    let key = AuditKey::load_or_create(&app.db.data_dir.join("audit.key")).expect("the key file");
    assert!(key.head_is_signed(&head), "the head's signature verifies with the key");
    assert!(!AuditKey::from_bytes(&[1; 32]).head_is_signed(&head), "and with no other key");

    let dsl = sign_in_again(&app, &school.dsl).await;
    let report = verify(&dsl).await;
    assert_verdict(&report, AuditVerdict::Intact, None);
    assert!(report.signed_heads >= 1 && report.newest_head_at >= Some(head.at), "{report:?}");
    assert!(report.message.contains("reaches the head signed"), "{}", report.message);

    let mails = smtp
        .wait_for(WAIT, |mails| {
            mails.iter().any(|m| m.to.contains(&school.dsl.user.email) && m.decoded().contains(&head.signature))
        })
        .await;
    let mail = mails
        .iter()
        .find(|m| m.to.contains(&school.dsl.user.email) && m.decoded().contains(&head.signature))
        .unwrap_or_else(|| panic!("the DSL has the signed head by e-mail: {mails:?}"));
    let text = mail.decoded();
    assert!(mail.header("Subject").is_some_and(|s| s.contains("Anchor School")), "{mail:?}");
    assert!(text.contains(&head.hash) && text.contains(&format!("Entries: {}", head.count)), "{text}");
    for other in [&school.admin, &school.leader, &school.staff] {
        assert!(smtp.mails_to(&other.user.email).is_empty(), "only DSLs have the head");
    }
}

/// One entry edited behind the server's back: altered, at that entry, and later entries do not hide it.
async fn an_altered_entry_is_reported_altered(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Altered School").await;
    add_people(&school.admin.api, 3).await;
    let log = entries(&app, &school).await;
    let middle = log[log.len() / 2].seq;
    lift_the_guards(&app, backend).await;
    sqlx::query("update audit_log set detail = 'nothing to see here' where school_id = $1 and seq = $2")
        .bind(school.id.to_string())
        .bind(middle)
        .execute(&app.state.db.pool)
        .await
        .expect("edit an entry");
    let report = verify(&school.dsl.api).await;
    assert_verdict(&report, AuditVerdict::Altered, Some(middle));
    assert!(report.message.contains(&format!("entry {middle}")) && report.message.contains("altered"), "{report:?}");
    add_people(&school.admin.api, 1).await;
    assert_verdict(&verify(&school.dsl.api).await, AuditVerdict::Altered, Some(middle));
}

/// The whole chain recomputed after an edit, with the old unkeyed formula or with a key that is not the
/// server's: it hangs together, yet it is rewritten from its first entry.
async fn a_chain_recomputed_without_the_key_is_reported_rewritten(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Rewritten School").await;
    add_people(&school.admin.api, 3).await;
    let edited = entries(&app, &school).await[2].seq;
    lift_the_guards(&app, backend).await;

    rewrite_chain(&app, &school, Some(edited), audit::unkeyed_hash).await;
    // Self-consistent: every entry points at its predecessor's hash.
    let log = entries(&app, &school).await;
    assert!(log.windows(2).all(|w| w[1].prev_hash == w[0].hash));
    let report = verify(&school.dsl.api).await;
    assert_verdict(&report, AuditVerdict::Rewritten, Some(1));
    assert!(report.message.contains("rewritten") && report.message.contains("key"), "{report:?}");

    let wrong = AuditKey::from_bytes(&[42; 32]);
    rewrite_chain(&app, &school, Some(edited), |m| wrong.keyed_hash(m)).await;
    assert_verdict(&verify(&school.dsl.api).await, AuditVerdict::Rewritten, Some(1));
}

/// Entries deleted from the end after a head was signed: truncated, while the log is shorter than the
/// head, and still once the server has chained new entries on past the cut.
async fn entries_cut_from_the_end_after_a_signed_head_are_reported_truncated(backend: Backend) {
    let app = spawn_app_shifted(backend, |_| {}).await;
    let school = app.school("Truncated School").await;
    add_people(&school.admin.api, 4).await;
    let head = a_day_on_with_a_signed_head(&app, &school).await;
    let (admin, dsl) = (sign_in_again(&app, &school.admin).await, sign_in_again(&app, &school.dsl).await);
    assert_verdict(&verify(&dsl).await, AuditVerdict::Intact, None);

    lift_the_guards(&app, backend).await;
    delete_from(&app, &school, head.count - 1).await;
    let report = verify(&dsl).await;
    assert_verdict(&report, AuditVerdict::Truncated, Some(head.count - 1));
    assert_eq!(report.entries, head.count - 2);
    assert!(report.message.contains("deleted from the end"), "{report:?}");
    assert!(report.message.contains(&format!("names {} entries", head.count)), "{report:?}");

    // New entries chained on after the cut: the log is as long as before, but no longer the one signed.
    add_people(&admin, 3).await;
    let report = verify(&dsl).await;
    assert!(report.entries > head.count, "{report:?}");
    assert_verdict(&report, AuditVerdict::Truncated, Some(head.count));
}

/// A log written before the key (plain SHA-256) is still intact after the upgrade that brings the key
/// in: its old entries are checked the old way, new ones with the key. An edit of an old entry still
/// shows; and once a head is signed, recomputing the whole log the old way and moving the point where
/// the keyed log begins shows as a rewrite.
async fn an_upgraded_log_keeps_its_unkeyed_entries_and_cannot_be_passed_off_as_unkeyed(backend: Backend) {
    let app = spawn_app_shifted(backend, |_| {}).await;
    let school = app.school("Upgraded School").await;
    add_people(&school.admin.api, 3).await;
    // The log as the server before the key wrote it, and the schema before migration 9.
    lift_the_guards(&app, backend).await;
    rewrite_chain(&app, &school, None, audit::unkeyed_hash).await;
    let old_entries = entries(&app, &school).await.len() as i64;
    // Before the key there were no signed heads either.
    match std::fs::remove_file(heads_file(&app)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("remove the heads file: {e}"),
        _ => {}
    }
    let undo = match backend {
        Backend::Sqlite => "drop table audit_keyed_from",
        Backend::Postgres => "drop table audit_keyed_from; drop function audit_keyed_from_fixed()",
    };
    for sql in undo.split("; ") {
        sqlx::query(sql).execute(&app.state.db.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    sqlx::query("delete from schema_migrations where version = 9").execute(&app.state.db.pool).await.expect("undo 9");

    // The upgraded server starts on it: the migration records where its keyed log begins.
    let upgraded = app.another_process(|_| {}).await;
    let dsl = upgraded.api_for(&school.dsl);
    let report = verify(&dsl).await;
    assert_verdict(&report, AuditVerdict::Intact, None);
    assert!(report.message.contains(&format!("entries 1 to {old_entries} were written before")), "{report:?}");
    add_people(&upgraded.api_for(&school.admin), 2).await;
    let report = verify(&dsl).await;
    assert_verdict(&report, AuditVerdict::Intact, None);
    assert_eq!(report.entries, old_entries + 2);
    assert_eq!(audit::keyed_from(&app.state.db.pool, school.id).await.expect("keyed from"), old_entries + 1);

    // A head is signed; then the whole log is recomputed without the key and passed off as written
    // before it, the point where the keyed log begins moved past its end.
    let head = a_day_on_with_a_signed_head(&app, &school).await;
    assert_eq!(head.keyed_from, old_entries + 1);
    let dsl = sign_in_again(&app, &school.dsl).await;
    assert_verdict(&verify(&dsl).await, AuditVerdict::Intact, None);
    lift_the_guards(&app, backend).await;
    rewrite_chain(&app, &school, Some(old_entries + 1), audit::unkeyed_hash).await;
    let now_entries = entries(&app, &school).await.len() as i64;
    sqlx::query("update audit_keyed_from set seq = $1 where school_id = $2")
        .bind(now_entries + 1)
        .bind(school.id.to_string())
        .execute(&app.state.db.pool)
        .await
        .expect("move the start of the keyed log");
    let report = verify(&dsl).await;
    assert_verdict(&report, AuditVerdict::Rewritten, Some(old_entries + 1));

    // Put back where it was, the recomputed keyed entries show as rewritten; an edit of an old,
    // unkeyed entry shows as altered.
    sqlx::query("update audit_keyed_from set seq = $1 where school_id = $2")
        .bind(old_entries + 1)
        .bind(school.id.to_string())
        .execute(&app.state.db.pool)
        .await
        .expect("put back the start of the keyed log");
    assert_verdict(&verify(&dsl).await, AuditVerdict::Rewritten, Some(old_entries + 1));
    sqlx::query("update audit_log set detail = 'nothing to see here' where school_id = $1 and seq = 2")
        .bind(school.id.to_string())
        .execute(&app.state.db.pool)
        .await
        .expect("edit an old entry");
    assert_verdict(&verify(&dsl).await, AuditVerdict::Altered, Some(2));
}

/// The key is made at first start, 32 bytes readable by the server's user only, where
/// `HOMEWARD_AUDIT_KEY_FILE` says (by default in the data directory); a restart reads the same key, so
/// the log written before it still checks out; a server given another key finds the log rewritten.
async fn the_key_is_made_private_at_first_start_and_reused_after_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    let default_key = app.db.data_dir.join("audit.key");
    let first = std::fs::read(&default_key).expect("the key is made at first start");
    assert_eq!(first.len(), 32);
    assert_ne!(first, vec![0; 32]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&default_key).expect("the key file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the server's user can read the key");
    }
    let school = app.school("Key School").await;
    add_people(&school.admin.api, 2).await;

    // A restart on the same settings: the same key, and the log checks out with it.
    let restarted = app.another_process(|_| {}).await;
    assert_eq!(std::fs::read(&default_key).expect("the key"), first, "the key is kept, not made again");
    add_people(&restarted.api_for(&school.admin), 2).await;
    assert_verdict(&verify(&restarted.api_for(&school.dsl)).await, AuditVerdict::Intact, None);
    assert_verdict(&verify(&school.dsl.api).await, AuditVerdict::Intact, None);

    // HOMEWARD_AUDIT_KEY_FILE elsewhere: made there, a different key, and the log was not sealed with it.
    let elsewhere = app.db.data_dir.join("keys").join("homeward-audit.key");
    let moved = elsewhere.clone();
    let other = app.another_process(move |s| s.audit_key_file = Some(moved)).await;
    let second = std::fs::read(&elsewhere).expect("the key is made where the setting says");
    assert_eq!(second.len(), 32);
    assert_ne!(second, first);
    let report = verify(&other.api_for(&school.dsl)).await;
    assert_verdict(&report, AuditVerdict::Rewritten, Some(1));
}

/// The API document describes the verdicts, so clients (and the fuzzer) know every answer.
async fn the_openapi_document_describes_the_verdicts(backend: Backend) {
    let app = spawn_app(backend).await;
    let (code, document) =
        app.api.raw(reqwest::Method::GET, "/api/openapi.json", None).await.expect("the API document");
    assert_eq!(code.as_u16(), 200);
    let schemas = &document["components"]["schemas"];
    let verdicts: Vec<&str> = schemas["AuditVerdict"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("AuditVerdict is described: {}", schemas["AuditVerdict"]))
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(verdicts, ["intact", "altered", "rewritten", "truncated"]);
    let report = &schemas["AuditChainReport"];
    assert_eq!(report["properties"]["verdict"]["$ref"], "#/components/schemas/AuditVerdict", "{report}");
    let required: Vec<&str> =
        report["required"].as_array().expect("required").iter().filter_map(|v| v.as_str()).collect();
    for field in ["intact", "entries", "message", "verdict", "signed_heads"] {
        assert!(required.contains(&field), "{field} is required: {report}");
    }
}
