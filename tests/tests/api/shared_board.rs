//! The live board's streams share one board per school: a change is built once however many leaders
//! watch, another school's changes build nothing here, a burst of changes gives a few builds ending on
//! the last change, and each viewer is still shown only what they may see. Boards here never refresh on
//! their timer, so every build counted comes from a change. Each on both databases.

use std::time::{Duration as StdDuration, Instant};

use homeward_shared::api::{AlertKind, BoardView, ClientEventKind, LocationPing};
use homeward_shared::client::{ApiClient, BoardEvents};
use homeward_shared::session::{AlarmKind, SessionStatus};
use homeward_tests::{Backend, TestApp, board_where, low_risk_visit, on_both_databases, spawn_app_shifted};
use uuid::Uuid;

const WAIT: StdDuration = StdDuration::from_secs(10);
const NEVER: u64 = 3600;
/// Longer than a change takes to be built and sent (150 ms to settle, and the build).
const QUIET: StdDuration = StdDuration::from_millis(600);

async fn spawn(backend: Backend) -> TestApp {
    spawn_app_shifted(backend, |s| s.board_refresh_secs = NEVER).await
}

/// Plan and start an hour's visit of `worker` now, with `companion` if any.
async fn start_visit(app: &TestApp, worker: &ApiClient, address: &str, companion: Option<Uuid>) -> Uuid {
    let mut visit = low_risk_visit();
    visit.address = address.into();
    visit.companion_id = companion;
    app.start_visit(worker, visit).await
}

/// A ping `step` hundred-thousandths of a degree north of the visit's place (well inside its geofence),
/// `step` milliseconds ahead, so that a later step is the visit's last position.
fn ping(app: &TestApp, step: u32) -> LocationPing {
    let at = app.now() + chrono::Duration::milliseconds(i64::from(step));
    LocationPing {
        id: Uuid::new_v4(),
        at: chrono::DateTime::from_timestamp_millis(at.timestamp_millis()).expect("a time"),
        latitude: latitude(step),
        longitude: -0.12,
        accuracy_m: 10.0,
        battery_percent: None,
    }
}

fn latitude(step: u32) -> f64 {
    51.5 + f64::from(step) * 0.00001
}

/// Whether the board shows `session` last seen at `step`.
fn at_step(board: &BoardView, session: Uuid, step: u32) -> bool {
    board
        .sessions
        .iter()
        .any(|e| e.session_id == session && e.last_position.as_ref().is_some_and(|p| p.latitude == latitude(step)))
}

/// Every board the stream sends within `QUIET`.
async fn boards_within_quiet(events: &mut BoardEvents) -> Vec<BoardView> {
    let mut boards = Vec::new();
    let until = tokio::time::Instant::now() + QUIET;
    while let Ok(next) = tokio::time::timeout_at(until, events.next()).await {
        boards.push(next.expect("the stream is readable").expect("the stream goes on"));
    }
    boards
}

fn builds(app: &TestApp) -> u64 {
    app.state.boards.builds()
}

// ---------------------------------------------------------------------------------------------------

async fn two_streams_of_a_school_cost_one_build_per_change(backend: Backend) {
    let app = spawn(backend).await;
    let school = app.school("Shared Board School").await;
    let session = start_visit(&app, &school.staff.api, "1 Shared Street", None).await;
    let mut leader = school.leader.api.board_events().await.expect("the leader's stream");
    let mut dsl = school.dsl.api.board_events().await.expect("the DSL's stream");
    board_where(&mut leader, WAIT, "the leader's first board", |b| b.sessions.len() == 1).await;
    board_where(&mut dsl, WAIT, "the DSL's first board", |b| b.sessions.len() == 1).await;
    assert_eq!(app.state.boards.schools(), 1, "one shared board for the school");
    assert_eq!(builds(&app), 2, "each stream built its own first board");

    for step in 1..=3 {
        school.staff.api.send_pings(session, &[ping(&app, step)]).await.expect("a ping");
        board_where(&mut leader, WAIT, "the ping on the leader's board", |b| at_step(b, session, step)).await;
        board_where(&mut dsl, WAIT, "the ping on the DSL's board", |b| at_step(b, session, step)).await;
        tokio::time::sleep(QUIET).await;
        assert_eq!(builds(&app), 2 + u64::from(step), "ping {step}: one build for both streams");
    }

    // Both streams closed: the school's shared board goes (at the latest once a change finds them gone).
    drop((leader, dsl));
    let gone = tokio::time::timeout(WAIT, async {
        let mut step = 10;
        while app.state.boards.schools() > 0 {
            step += 1;
            school.staff.api.send_pings(session, &[ping(&app, step)]).await.expect("a ping");
            tokio::time::sleep(StdDuration::from_millis(300)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the shared board of a school nobody watches is dropped");
}

async fn duress_stays_hidden_from_the_leader_on_the_visit_on_the_shared_board(backend: Backend) {
    let app = spawn(backend).await;
    let school = app.school("Shared Duress School").await;
    let plain = start_visit(&app, &school.other_staff.api, "1 Plain Road", None).await;
    let mut leader = school.leader.api.board_events().await.expect("the leader's stream");
    let mut dsl = school.dsl.api.board_events().await.expect("the DSL's stream");
    board_where(&mut leader, WAIT, "the leader's first board", |b| b.sessions.len() == 1).await;
    board_where(&mut dsl, WAIT, "the DSL's first board", |b| b.sessions.len() == 1).await;

    // The leader goes out alone, and as the staff member's companion; both visits end with the duress PIN.
    school.leader.api.set_pins("2468", "1357").await.expect("the leader's pins");
    school.staff.api.set_pins("2468", "1357").await.expect("the staff member's pins");
    let own = start_visit(&app, &school.leader.api, "2 Own Visit Lane", None).await;
    let accompanied = start_visit(&app, &school.staff.api, "3 Companion Close", Some(school.leader.id())).await;
    for (worker, session) in [(&school.leader.api, own), (&school.staff.api, accompanied)] {
        let duress = app.event_now(ClientEventKind::EndWithPin { pin: "1357".into() });
        worker.send_events(session, &[duress]).await.expect("end with the duress PIN");
    }

    let in_duress = |b: &BoardView, session: Uuid| {
        b.sessions.iter().any(|e| {
            e.session_id == session
                && (e.status, e.alarm) == (SessionStatus::Alarm, Some(AlarmKind::Duress))
                && e.alerts.iter().any(|a| a.kind == AlertKind::Duress)
        })
    };
    board_where(&mut dsl, WAIT, "both duress alarms on the DSL's board", |b| {
        in_duress(b, own) && in_duress(b, accompanied)
    })
    .await;
    // A later change: by the board that shows it, the leader's stream has had every change before it.
    school.other_staff.api.send_pings(plain, &[ping(&app, 1)]).await.expect("a ping");
    let seen_by_dsl = board_where(&mut dsl, WAIT, "the ping on the DSL's board", |b| at_step(b, plain, 1)).await;
    let seen_by_leader =
        board_where(&mut leader, WAIT, "the ping on the leader's board", |b| at_step(b, plain, 1)).await;

    let ids = |b: &BoardView| b.sessions.iter().map(|e| e.session_id).collect::<Vec<_>>();
    let mut all = vec![own, accompanied, plain];
    all.sort();
    let mut seen = ids(&seen_by_dsl);
    seen.sort();
    assert_eq!(seen, all, "the DSL sees both alarms: {seen_by_dsl:?}");
    assert_eq!(seen_by_dsl.sessions.last().map(|e| e.session_id), Some(plain), "the alarms first");
    assert_eq!(ids(&seen_by_leader), vec![plain], "the leader on both visits sees neither: {seen_by_leader:?}");
    assert!(
        seen_by_leader.sessions.iter().all(|e| e.alerts.iter().all(|a| a.kind != AlertKind::Duress)),
        "{seen_by_leader:?}"
    );
    // The stream shows each viewer what the snapshot shows them.
    for (who, api, streamed) in
        [("leader", &school.leader.api, &seen_by_leader), ("DSL", &school.dsl.api, &seen_by_dsl)]
    {
        let snapshot = api.board().await.expect("the snapshot");
        assert_eq!(ids(&snapshot), ids(streamed), "{who}");
        let alerts = |b: &BoardView| b.sessions.iter().map(|e| e.alerts.len()).collect::<Vec<_>>();
        assert_eq!(alerts(&snapshot), alerts(streamed), "{who}");
    }
}

async fn another_schools_changes_build_nothing_here(backend: Backend) {
    let app = spawn(backend).await;
    let here = app.school("Here School").await;
    let there = app.school("There School").await;
    let ours = start_visit(&app, &here.staff.api, "1 Here Road", None).await;
    let theirs = start_visit(&app, &there.staff.api, "1 There Road", None).await;
    let mut leader = here.leader.api.board_events().await.expect("our leader's stream");
    let mut dsl = here.dsl.api.board_events().await.expect("our DSL's stream");
    let mut elsewhere = there.leader.api.board_events().await.expect("their leader's stream");
    for events in [&mut leader, &mut dsl, &mut elsewhere] {
        board_where(events, WAIT, "the first board", |b| b.sessions.len() == 1).await;
    }
    assert_eq!(app.state.boards.schools(), 2);
    let before = builds(&app);

    there.staff.api.send_pings(theirs, &[ping(&app, 1)]).await.expect("their ping");
    board_where(&mut elsewhere, WAIT, "their ping on their board", |b| at_step(b, theirs, 1)).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(builds(&app), before + 1, "their change built their board only");
    for (who, events) in [("our leader", &mut leader), ("our DSL", &mut dsl)] {
        let sent = boards_within_quiet(events).await;
        assert!(sent.is_empty(), "{who} was sent a board for another school's change: {sent:?}");
    }

    here.staff.api.send_pings(ours, &[ping(&app, 2)]).await.expect("our ping");
    board_where(&mut leader, WAIT, "our ping on our board", |b| at_step(b, ours, 2)).await;
    board_where(&mut dsl, WAIT, "our ping on our board", |b| at_step(b, ours, 2)).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(builds(&app), before + 2, "our change built our board only");
    let sent = boards_within_quiet(&mut elsewhere).await;
    assert!(sent.is_empty(), "they were sent a board for our change: {sent:?}");
}

async fn a_burst_of_pings_gives_a_few_builds_ending_on_the_last(backend: Backend) {
    const PINGS: u32 = 50;
    let app = spawn(backend).await;
    let school = app.school("Burst School").await;
    let session = start_visit(&app, &school.staff.api, "1 Burst Avenue", None).await;
    let mut leader = school.leader.api.board_events().await.expect("the leader's stream");
    let mut dsl = school.dsl.api.board_events().await.expect("the DSL's stream");
    board_where(&mut leader, WAIT, "the leader's first board", |b| b.sessions.len() == 1).await;
    board_where(&mut dsl, WAIT, "the DSL's first board", |b| b.sessions.len() == 1).await;
    let before = builds(&app);

    let started = Instant::now();
    for step in 1..=PINGS {
        school.staff.api.send_pings(session, &[ping(&app, step)]).await.expect("a ping");
    }
    let burst = started.elapsed();
    for (who, events) in [("the leader", &mut leader), ("the DSL", &mut dsl)] {
        board_where(events, WAIT, "the last ping", |b| at_step(b, session, PINGS)).await;
        let later = boards_within_quiet(events).await;
        assert!(later.iter().all(|b| at_step(b, session, PINGS)), "{who}'s last board is not the last ping: {later:?}");
    }

    let built = builds(&app) - before;
    // At most one build per 150 ms while the pings came, and one after the last.
    let most = burst.as_millis() as u64 / 150 + 2;
    assert!(built <= most, "{built} builds for {PINGS} pings in {burst:?}: more than {most}");
    assert!(built <= u64::from(PINGS) / 2, "{built} builds for {PINGS} pings in {burst:?}");
}

on_both_databases!(
    two_streams_of_a_school_cost_one_build_per_change,
    duress_stays_hidden_from_the_leader_on_the_visit_on_the_shared_board,
    another_schools_changes_build_nothing_here,
    a_burst_of_pings_gives_a_few_builds_ending_on_the_last,
);
