//! Location pings arriving together are written in one transaction (group commit), and each request
//! must still be stored exactly once by its ids, answered only with its own result, and undone alone
//! when it fails.

use std::collections::HashSet;

use futures::future::join_all;
use homeward_server::auth::AuthUser;
use homeward_server::store::pings;
use homeward_shared::Role;
use homeward_shared::api::{ClientEventKind, LocationPing};
use homeward_tests::{Backend, Member, TestApp, low_risk_visit, on_both_databases, spawn_app};
use sqlx::Row;
use uuid::Uuid;

async fn started_visit(app: &TestApp, member: &Member) -> Uuid {
    let mut visit = low_risk_visit();
    visit.planned_start = app.now();
    let session = member.api.plan_session(&visit).await.unwrap();
    member.api.send_events(session.id, &[app.event_now(ClientEventKind::Start { location: None })]).await.unwrap();
    session.id
}

fn ping(app: &TestApp) -> LocationPing {
    LocationPing {
        id: Uuid::new_v4(),
        at: app.now(),
        latitude: 51.5,
        longitude: -0.12,
        accuracy_m: 10.0,
        battery_percent: Some(80),
    }
}

/// The visit's staff member as the ping writer sees them once signed in.
fn signed_in_staff(school: &homeward_tests::School) -> AuthUser {
    AuthUser {
        user_id: school.staff.id(),
        school_id: school.id,
        name: school.staff.user.name.clone(),
        roles: vec![Role::Staff],
        token_hash: String::new(),
        device_id: None,
    }
}

/// Every turn a group of pings could be written in (SQLite's writer, PostgreSQL's ping writers), held
/// so that requests queue together until it is dropped.
struct PingTurnsHeld {
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
    _ping_writers: tokio::sync::OwnedSemaphorePermit,
}

async fn hold_ping_turns(db: &homeward_server::db::Db) -> PingTurnsHeld {
    let all = pings::POSTGRES_PING_WRITERS as u32;
    PingTurnsHeld {
        _writer: db.write_slot().await,
        _ping_writers: db.ping_writers.clone().acquire_many_owned(all).await.unwrap(),
    }
}

/// Wait until `n` ping requests are queued for a turn to write.
async fn wait_until_queued(db: &homeward_server::db::Db, n: usize, what: &str) {
    let give_up = tokio::time::Instant::now() + homeward_tests::BACKGROUND_WAIT;
    while db.ping_queue.lock().unwrap().len() != n && tokio::time::Instant::now() < give_up {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(db.ping_queue.lock().unwrap().len(), n, "{what}");
}

async fn stored_ping_ids(app: &TestApp, session: Uuid) -> Vec<String> {
    sqlx::query("select ping_id from location_pings where session_id = $1")
        .bind(session.to_string())
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

/// Two phones each send 40 batches at once, and every batch twice (a phone resends what got no answer
/// yet): every ping is stored once, the answers add up to exactly the pings sent, and the resent
/// copies are counted as duplicates.
async fn pings_sent_together_are_each_stored_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Ingest School").await;
    let visits = [
        (school.staff.api.clone(), started_visit(&app, &school.staff).await),
        (school.other_staff.api.clone(), started_visit(&app, &school.other_staff).await),
    ];
    let mut requests = Vec::new();
    let mut sent: Vec<HashSet<Uuid>> = vec![HashSet::new(), HashSet::new()];
    for k in 0..80 {
        let (api, session) = visits[k % 2].clone();
        let batch: Vec<LocationPing> = (0..1 + k % 3).map(|_| ping(&app)).collect();
        sent[k % 2].extend(batch.iter().map(|p| p.id));
        for _ in 0..2 {
            let (api, batch) = (api.clone(), batch.clone());
            requests.push(async move { (batch.len(), api.send_pings(session, &batch).await.unwrap()) });
        }
    }
    let answers = join_all(requests).await;
    let stored: usize = answers.iter().map(|(_, a)| a.stored).sum();
    let duplicates: usize = answers.iter().map(|(_, a)| a.duplicates).sum();
    let unique = sent[0].len() + sent[1].len();
    assert_eq!(stored, unique, "each ping is stored by exactly one of the two requests that carried it");
    assert_eq!(duplicates, unique, "the other copy is a duplicate");
    for (n, answer) in &answers {
        assert_eq!(answer.stored + answer.duplicates, *n, "each answer accounts for its own batch only");
    }
    for (i, (_, session)) in visits.iter().enumerate() {
        let in_db: Vec<String> = stored_ping_ids(&app, *session).await;
        assert_eq!(in_db.len(), sent[i].len(), "no ping is stored twice");
        let expected: HashSet<String> = sent[i].iter().map(Uuid::to_string).collect();
        assert_eq!(in_db.into_iter().collect::<HashSet<_>>(), expected, "every ping is stored with its session");
    }
}

/// A request that fails while its group is being written (here: a session that does not exist, found
/// only inside the transaction) is answered with its own error; the requests written with it are stored.
/// The turns to write are held while they queue, so all of them go in one transaction.
async fn a_failing_request_in_a_group_is_undone_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Ingest School").await;
    let session = started_visit(&app, &school.staff).await;
    let db = app.state.db.clone();
    let staff = signed_in_staff(&school);
    let held = hold_ping_turns(&db).await;
    let mut calls = Vec::new();
    let mut good = HashSet::new();
    for k in 0..9 {
        let batch = vec![ping(&app), ping(&app)];
        let target = if k == 4 { Uuid::new_v4() } else { session };
        if k != 4 {
            good.extend(batch.iter().map(|p| p.id.to_string()));
        }
        let (db, staff, now) = (db.clone(), staff.clone(), app.now());
        calls.push(tokio::spawn(async move { pings::record(&db, &staff, target, batch, now).await }));
    }
    // Every request waits in the queue for the turn the test holds.
    wait_until_queued(&db, 9, "all nine requests are queued together").await;
    drop(held);
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    for (k, result) in results.iter().enumerate() {
        match (k, result) {
            (4, Err(e)) => assert_eq!(e.body().code, "not_found", "{e}"),
            (4, Ok(counts)) => panic!("a ping for a session that does not exist was stored: {counts:?}"),
            (_, Ok(counts)) => assert_eq!(*counts, (2, 0)),
            (_, Err(e)) => panic!("request {k} failed with its group: {e}"),
        }
    }
    let in_db: HashSet<String> = stored_ping_ids(&app, session).await.into_iter().collect();
    assert_eq!(in_db, good);
    let strays: i64 = sqlx::query("select count(*) from location_pings where session_id <> $1")
        .bind(session.to_string())
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(strays, 0, "nothing of the failed request is stored");
}

/// The visit is read, and each request's pings checked against it, where the group is written: a
/// request its visit refuses (a leader's, not the worker's; a visit not started; a ping from before the
/// visit began) is answered with its own error and stores nothing, and the rest of its group is stored.
async fn requests_their_visit_refuses_are_answered_alone_in_their_group(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Checking School").await;
    let session = started_visit(&app, &school.staff).await;
    let mut planned_visit = low_risk_visit();
    planned_visit.planned_start = app.now();
    let planned = school.staff.api.plan_session(&planned_visit).await.unwrap().id;
    let db = app.state.db.clone();
    let staff = signed_in_staff(&school);
    let leader = AuthUser {
        user_id: school.leader.id(),
        name: school.leader.user.name.clone(),
        roles: vec![Role::Leader],
        ..staff.clone()
    };
    let commits_before = direct_commits(&db);
    let held = hold_ping_turns(&db).await;
    let mut calls = Vec::new();
    let mut good = HashSet::new();
    for k in 0..7 {
        let mut batch = vec![ping(&app), ping(&app)];
        let (user, target) = match k {
            1 => (leader.clone(), session),
            3 => (staff.clone(), planned),
            5 => {
                batch[1].at = app.now() - chrono::Duration::minutes(30);
                (staff.clone(), session)
            }
            _ => {
                good.extend(batch.iter().map(|p| p.id.to_string()));
                (staff.clone(), session)
            }
        };
        let (db, now) = (db.clone(), app.now());
        calls.push(tokio::spawn(async move { pings::record(&db, &user, target, batch, now).await }));
    }
    wait_until_queued(&db, 7, "all seven requests are queued together").await;
    drop(held);
    for (k, call) in calls.into_iter().enumerate() {
        let answer = call.await.unwrap();
        match (k, answer) {
            (1, Err(e)) => assert_eq!(e.body().code, "forbidden", "a leader's pings: {e}"),
            (3, Err(e)) => assert_eq!(e.body().code, "not_started", "{e}"),
            (5, Err(e)) => assert_eq!(e.body().code, "invalid_pings_at", "a ping from before the visit: {e}"),
            (1 | 3 | 5, Ok(counts)) => panic!("request {k} should have been refused, but stored {counts:?}"),
            (_, answer) => assert_eq!(answer.expect("stored"), (2, 0), "request {k}"),
        }
    }
    let in_db: HashSet<String> = stored_ping_ids(&app, session).await.into_iter().collect();
    assert_eq!(in_db, good, "the accepted requests' pings, and nothing of a refused one");
    assert!(stored_ping_ids(&app, planned).await.is_empty());
    if backend == Backend::Sqlite {
        assert_eq!(direct_commits(&db) - commits_before, 1, "the group went in one hand-off, refusals and all");
    }
}

/// A request the database itself refuses (here a trigger the test installs refuses one latitude) makes
/// the group's few-statement write fail; the group is then written again request by request, so the
/// refused request alone gets an error and every other request in the group is stored once.
async fn a_request_the_database_refuses_fails_alone_and_its_group_is_still_stored(backend: Backend) {
    const REFUSED_LATITUDE: f64 = -12.5;
    let app = spawn_app(backend).await;
    let school = app.school("Refusing School").await;
    let session = started_visit(&app, &school.staff).await;
    let db = app.state.db.clone();
    let ddl: &[&str] = match backend {
        Backend::Sqlite => &["create trigger refuse_one_latitude before insert on location_pings \
             when new.latitude = -12.5 begin select raise(abort, 'refused by the test'); end"],
        Backend::Postgres => &[
            "create function refuse_one_latitude() returns trigger language plpgsql as $$ begin \
             if new.latitude = -12.5 then raise exception 'refused by the test'; end if; return new; end $$",
            "create trigger refuse_one_latitude before insert on location_pings \
             for each row execute function refuse_one_latitude()",
        ],
    };
    for statement in ddl {
        sqlx::query(statement).execute(&db.pool).await.expect("install the refusing trigger");
    }
    let staff = signed_in_staff(&school);
    let held = hold_ping_turns(&db).await;
    let mut calls = Vec::new();
    let mut good = HashSet::new();
    for k in 0..6 {
        let mut batch = vec![ping(&app), ping(&app)];
        if k == 2 {
            batch[1].latitude = REFUSED_LATITUDE;
        } else {
            good.extend(batch.iter().map(|p| p.id.to_string()));
        }
        let (db, staff, now) = (db.clone(), staff.clone(), app.now());
        calls.push(tokio::spawn(async move { pings::record(&db, &staff, session, batch, now).await }));
    }
    wait_until_queued(&db, 6, "all six requests are queued together").await;
    drop(held);
    for (k, call) in calls.into_iter().enumerate() {
        match (k, call.await.unwrap()) {
            (2, Ok(counts)) => panic!("the refused request was answered as stored: {counts:?}"),
            (2, Err(_)) => {}
            (_, Ok(counts)) => assert_eq!(counts, (2, 0), "request {k}"),
            (_, Err(e)) => panic!("request {k} failed with the refused one: {e}"),
        }
    }
    let in_db: HashSet<String> = stored_ping_ids(&app, session).await.into_iter().collect();
    assert_eq!(in_db, good, "the five good requests are stored, nothing of the refused one");
    let pending_checks: i64 = sqlx::query(
        "select count(*) from timers where session_id = $1 and kind = 'signal_check' \
         and fired_at is null and cancelled_at is null",
    )
    .bind(session.to_string())
    .fetch_one(&db.pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(pending_checks, 1, "one lost-signal check stays armed");
}

/// SQLite has one writer. Pings give way to every other write (a missed deadline's escalation, a panic,
/// a check-in): a write that comes to the writer after pings are already queued still goes first, and
/// the pings follow, every one stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_other_writes_go_before_queued_pings() {
    let app = spawn_app(Backend::Sqlite).await;
    let school = app.school("Priority School").await;
    let session = started_visit(&app, &school.staff).await;
    let db = app.state.db.clone();
    let staff = signed_in_staff(&school);
    let slot = db.write_slot().await;
    let mut calls = Vec::new();
    for _ in 0..6 {
        let (db, staff, now, batch) = (db.clone(), staff.clone(), app.now(), vec![ping(&app), ping(&app)]);
        calls.push(tokio::spawn(async move { pings::record(&db, &staff, session, batch, now).await }));
    }
    wait_until_queued(&db, 6, "the pings are queued first").await;
    // Polled once here, the other write is counted and in line for the writer before it is let go (the
    // server's own loops may be waiting too: they also go before the pings).
    let mut other = Box::pin(async {
        let mut tx = db.begin().await.expect("the writer's turn");
        let pings_before: i64 = sqlx::query("select count(*) from location_pings where session_id = $1")
            .bind(session.to_string())
            .fetch_one(tx.conn())
            .await
            .unwrap()
            .get(0);
        tx.commit().await.unwrap();
        pings_before
    });
    assert!(futures::poll!(&mut other).is_pending(), "the writer is held: the other write must wait");
    assert!(db.other_writes_waiting() >= 1, "the other write waits behind the queued pings");
    drop(slot);
    assert_eq!(other.await, 0, "the other write had the writer before any queued ping was written");
    for call in calls {
        assert_eq!(call.await.unwrap().expect("the pings are stored after it"), (2, 0));
    }
    assert_eq!(stored_ping_ids(&app, session).await.len(), 12, "every ping is stored");
}

/// Groups written on SQLite's direct connection so far (0 on PostgreSQL, which has none).
fn direct_commits(db: &homeward_server::db::Db) -> u64 {
    db.direct.as_ref().map_or(0, |d| d.commits.load(std::sync::atomic::Ordering::Relaxed))
}

/// The pending lost-signal check's due time, in unix milliseconds.
async fn signal_check_due(db: &homeward_server::db::Db, session: Uuid) -> Vec<i64> {
    sqlx::query(
        "select due_at from timers where session_id = $1 and kind = 'signal_check'          and fired_at is null and cancelled_at is null",
    )
    .bind(session.to_string())
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<i64, _>(0))
    .collect()
}

/// Six everyday ping requests queued together on SQLite are written as one group in one hand-off to the
/// direct connection: each is answered with its own counts, every ping is stored once, and the visit's
/// one lost-signal check stays within half a period of ten minutes after the newest ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_everyday_pings_queued_together_are_written_in_one_hand_off() {
    let app = spawn_app(Backend::Sqlite).await;
    let school = app.school("Direct School").await;
    let session = started_visit(&app, &school.staff).await;
    let db = app.state.db.clone();
    let staff = signed_in_staff(&school);
    let before = direct_commits(&db);
    let slot = db.write_slot().await;
    let mut calls = Vec::new();
    let mut sent = HashSet::new();
    let mut newest = app.now();
    for k in 0..6 {
        let mut batch = vec![ping(&app), ping(&app)];
        batch[1].at = app.now() + chrono::Duration::seconds(k);
        newest = newest.max(batch[1].at);
        sent.extend(batch.iter().map(|p| p.id.to_string()));
        let (db, staff, now) = (db.clone(), staff.clone(), app.now());
        calls.push(tokio::spawn(async move { pings::record(&db, &staff, session, batch, now).await }));
    }
    wait_until_queued(&db, 6, "all six requests are queued together").await;
    drop(slot);
    for call in calls {
        assert_eq!(call.await.unwrap().expect("stored"), (2, 0));
    }
    assert_eq!(direct_commits(&db), before + 1, "the six requests went in one direct transaction");
    let in_db: HashSet<String> = stored_ping_ids(&app, session).await.into_iter().collect();
    assert_eq!(in_db, sent);
    // Moved only once it falls more than half a period behind the newest ping (`store::ping_group`).
    let due = signal_check_due(&db, session).await;
    let full = (newest + chrono::Duration::minutes(10)).timestamp_millis();
    assert_eq!(due.len(), 1, "one lost-signal check stays armed");
    assert!((full - 5 * 60_000..=full).contains(&due[0]), "due {} ms before the full period", full - due[0]);
}

/// A group in which one request calls for more than stored rows (a low battery, whose notice is raised
/// in the same transaction) is written whole the full way: every request is stored, the notice is
/// raised once, and the lost-signal check still follows the pings.
async fn a_group_with_a_low_battery_among_it_is_written_in_full(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Battery School").await;
    let session = started_visit(&app, &school.staff).await;
    let db = app.state.db.clone();
    let staff = signed_in_staff(&school);
    let before = direct_commits(&db);
    let held = hold_ping_turns(&db).await;
    let mut calls = Vec::new();
    for k in 0..6 {
        let mut batch = vec![ping(&app), ping(&app)];
        if k == 3 {
            batch[0].battery_percent = Some(9);
        }
        let (db, staff, now) = (db.clone(), staff.clone(), app.now());
        calls.push(tokio::spawn(async move { pings::record(&db, &staff, session, batch, now).await }));
    }
    wait_until_queued(&db, 6, "all six requests are queued together").await;
    drop(held);
    for call in calls {
        assert_eq!(call.await.unwrap().expect("stored"), (2, 0));
    }
    assert_eq!(direct_commits(&db), before, "nothing of this group went the direct way");
    assert_eq!(stored_ping_ids(&app, session).await.len(), 12, "every ping is stored");
    let low_battery: i64 = sqlx::query("select count(*) from alerts where session_id = $1 and kind = 'low_battery'")
        .bind(session.to_string())
        .fetch_one(&db.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(low_battery, 1, "the low battery is told once");
    assert_eq!(signal_check_due(&db, session).await.len(), 1, "one lost-signal check stays armed");
}

/// The transactions that wrote a session's pings (PostgreSQL's `xmin` of each row).
async fn writing_transactions(db: &homeward_server::db::Db, session: Uuid) -> usize {
    let (n,): (i64,) = sqlx::query_as("select count(distinct xmin::text) from location_pings where session_id = $1")
        .bind(session.to_string())
        .fetch_one(&db.pool)
        .await
        .unwrap();
    n as usize
}

/// On PostgreSQL, requests that queue together are written in one transaction, and a group never
/// waits for a session another transaction holds locked: the other sessions' pings are stored and
/// answered at once, and the held session's requests are written, each alone, once it is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_group_writes_past_a_session_another_transaction_holds() {
    let app = spawn_app(Backend::Postgres).await;
    let school = app.school("Group School").await;
    let free = started_visit(&app, &school.staff).await;
    let held_session = started_visit(&app, &school.other_staff).await;
    let db = app.state.db.clone();
    let staff = signed_in_staff(&school);
    let other =
        AuthUser { user_id: school.other_staff.id(), name: school.other_staff.user.name.clone(), ..staff.clone() };

    let mut blocker = db.pool.begin().await.unwrap();
    sqlx::query("select session_id from sessions where session_id = $1 for update")
        .bind(held_session.to_string())
        .execute(&mut *blocker)
        .await
        .unwrap();

    let held = hold_ping_turns(&db).await;
    let (mut to_free, mut to_held) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        for (user, session, calls) in [(&staff, free, &mut to_free), (&other, held_session, &mut to_held)] {
            let (db, user, now, batch) = (db.clone(), user.clone(), app.now(), vec![ping(&app), ping(&app)]);
            calls.push(tokio::spawn(async move { pings::record(&db, &user, session, batch, now).await }));
        }
    }
    wait_until_queued(&db, 6, "all six requests are queued together").await;
    drop(held);

    for call in to_free {
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), call)
            .await
            .expect("the free session's pings are answered while the other session is held")
            .unwrap();
        assert_eq!(answer.expect("stored"), (2, 0));
    }
    assert_eq!(stored_ping_ids(&app, free).await.len(), 6);
    assert_eq!(writing_transactions(&db, free).await, 1, "the free session's three requests went in one transaction");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(to_held.iter().all(|call| !call.is_finished()), "the held session's requests wait for its lock");
    assert_eq!(stored_ping_ids(&app, held_session).await.len(), 0);

    blocker.commit().await.unwrap();
    for call in to_held {
        assert_eq!(call.await.unwrap().expect("stored once let go"), (2, 0));
    }
    assert_eq!(stored_ping_ids(&app, held_session).await.len(), 6, "every ping of the held session is stored");
    assert_eq!(signal_check_due(&db, held_session).await.len(), 1, "one lost-signal check stays armed");
}

on_both_databases!(
    a_group_with_a_low_battery_among_it_is_written_in_full,
    pings_sent_together_are_each_stored_once,
    a_failing_request_in_a_group_is_undone_alone,
    requests_their_visit_refuses_are_answered_alone_in_their_group,
    a_request_the_database_refuses_fails_alone_and_its_group_is_still_stored
);
