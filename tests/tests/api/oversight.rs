//! Leaders, the DSL and admins: the live board and its event stream, messages to the worker, the review
//! queue, the monthly figures, the CSV export, the signal-loss map, the no-push warning, and the admin's
//! changes to users and the retention period. Each on both databases.

use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone, Utc};
use homeward_server::clock::ManualClock;
use homeward_shared::api::{
    AlertKind, AlertResolution, AlertStatus, ClientEventKind, LocationPing, MessageDirection, NoSignalMarkRequest,
    OutcomeRequest, ResolveAlertRequest, ReviewKind, UpdateUserRequest,
};
use homeward_shared::client::ApiClient;
use homeward_shared::session::{Concern, Outcome, SessionStatus};
use homeward_shared::{Coordinates, Role};
use homeward_tests::{
    Backend, School, TestApp, board_where, low_risk_visit, on_both_databases, spawn_app, spawn_app_shifted,
    spawn_app_with_clock,
};
use uuid::Uuid;

const WAIT: StdDuration = StdDuration::from_secs(10);

/// Plan and start a five-minute visit of `worker` now by the server's clock, with no check-in interval.
async fn start_visit(app: &TestApp, worker: &ApiClient, address: &str) -> Uuid {
    let mut visit = low_risk_visit();
    visit.address = address.into();
    visit.expected_duration_minutes = 5;
    visit.check_in_interval_minutes = None;
    app.start_visit(worker, visit).await
}

async fn panic(app: &TestApp, worker: &ApiClient, session: Uuid) {
    worker.send_events(session, &[app.event_now(ClientEventKind::Panic { location: None })]).await.expect("panic");
}

async fn alert_of(school: &School, session: Uuid) -> Uuid {
    let alerts = school.leader.api.alerts("all").await.expect("alerts");
    alerts.iter().find(|a| a.session_id == session).map(|a| a.id).expect("an alert for the visit")
}

fn ping(app: &TestApp, offset: Duration, at: Coordinates, battery: Option<i64>) -> LocationPing {
    let when = chrono::DateTime::from_timestamp_millis((app.now() + offset).timestamp_millis()).expect("a time");
    LocationPing {
        id: Uuid::new_v4(),
        at: when,
        latitude: at.latitude,
        longitude: at.longitude,
        accuracy_m: 12.0,
        battery_percent: battery,
    }
}

fn outcome(concern: Concern, notes: &str) -> OutcomeRequest {
    OutcomeRequest {
        id: Some(Uuid::new_v4()),
        outcome: Outcome {
            child_seen: true,
            responsible_adult_present: true,
            entered_premises: false,
            concern,
            notes: notes.into(),
        },
    }
}

// ---------------------------------------------------------------------------------------------------

async fn board_lists_live_visits_most_urgent_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Board School").await;
    let quiet = start_visit(&app, &school.staff.api, "1 Quiet Lane").await;
    let alarmed = start_visit(&app, &school.other_staff.api, "2 Loud Road").await;
    // A visit only planned is not on the board.
    school.staff.api.plan_session(&low_risk_visit()).await.expect("plan another");
    let here = Coordinates { latitude: 51.5007, longitude: -0.1246 };
    school.staff.api.send_pings(quiet, &[ping(&app, Duration::seconds(-20), here, Some(64))]).await.expect("pings");
    panic(&app, &school.other_staff.api, alarmed).await;

    let board = school.leader.api.board().await.expect("the board");
    let ids: Vec<Uuid> = board.sessions.iter().map(|e| e.session_id).collect();
    assert_eq!(ids, vec![alarmed, quiet], "the alarm first, and nothing that is not live");
    let top = &board.sessions[0];
    assert_eq!(top.status, SessionStatus::Alarm);
    assert_eq!(top.worker_name, school.other_staff.user.name);
    assert_eq!(top.alerts.len(), 1);
    assert_eq!(top.alerts[0].kind, AlertKind::Panic);
    assert_eq!(top.alerts[0].owner_name, None);
    let calm = &board.sessions[1];
    assert_eq!(calm.status, SessionStatus::Active);
    assert_eq!(calm.address, "1 Quiet Lane");
    assert_eq!(calm.battery_percent, Some(64));
    let position = calm.last_position.as_ref().expect("the last position");
    assert_eq!((position.latitude, position.longitude), (here.latitude, here.longitude));
    assert!((19..=30).contains(&position.age_seconds), "age {}", position.age_seconds);
    let to_deadline = calm.seconds_to_deadline.expect("a deadline");
    assert!((280..=300).contains(&to_deadline), "five minutes to go: {to_deadline}");
    assert!(board.map_tile_url.contains("{z}"), "{}", board.map_tile_url);

    // The alert carries the visit's trail, newest first.
    let alert = alert_of(&school, alarmed).await;
    let earlier = Coordinates { latitude: 51.5010, longitude: -0.1250 };
    let later = Coordinates { latitude: 51.5020, longitude: -0.1260 };
    school
        .other_staff
        .api
        .send_pings(
            alarmed,
            &[ping(&app, Duration::seconds(-40), earlier, None), ping(&app, Duration::seconds(-10), later, Some(50))],
        )
        .await
        .expect("pings");
    let trail = school.leader.api.alert(alert).await.expect("the alert").trail;
    let positions: Vec<(f64, f64)> = trail.iter().map(|p| (p.latitude, p.longitude)).collect();
    assert_eq!(positions, vec![(later.latitude, later.longitude), (earlier.latitude, earlier.longitude)]);
    assert!(trail[0].at > trail[1].at);

    // Taking ownership shows who has it.
    school.dsl.api.acknowledge_alert(alert).await.expect("take ownership");
    let board = school.leader.api.board().await.expect("the board");
    assert_eq!(board.sessions[0].alerts[0].owner_name.as_deref(), Some(school.dsl.user.name.as_str()));
    assert_eq!(board.sessions[0].alerts[0].status, AlertStatus::Acknowledged);

    // Staff do not see the board; another school sees its own, empty one.
    assert_eq!(school.staff.api.board().await.unwrap_err().status().map(|s| s.as_u16()), Some(403));
    let other = app.school("Other Board School").await;
    assert!(other.leader.api.board().await.expect("their board").sessions.is_empty());
}

async fn the_board_stream_turns_overdue_without_asking(backend: Backend) {
    let app = spawn_app_shifted(backend, |_| {}).await;
    let school = app.school("Stream School").await;
    let mut events = school.leader.api.board_events().await.expect("open the stream");
    let first = board_where(&mut events, WAIT, "the first board", |_| true).await;
    assert!(first.sessions.is_empty(), "nothing live yet: {first:?}");

    let session = start_visit(&app, &school.staff.api, "3 Stream Street").await;
    board_where(&mut events, WAIT, "the visit active", |b| {
        b.sessions.iter().any(|e| e.session_id == session && e.status == SessionStatus::Active)
    })
    .await;
    // The deadline passes; the scheduler marks it overdue and the stream says so, unasked.
    app.advance(Duration::minutes(5) + Duration::seconds(1));
    let overdue = board_where(&mut events, WAIT, "the visit overdue", |b| {
        b.sessions.iter().any(|e| e.session_id == session && e.status == SessionStatus::Overdue)
    })
    .await;
    let entry = overdue.sessions.iter().find(|e| e.session_id == session).expect("the visit");
    assert!(entry.seconds_to_deadline.is_some_and(|s| s <= 0), "{entry:?}");
    assert!(entry.alerts.iter().any(|a| a.kind == AlertKind::MissedDeadline));

    // The worker ends the visit: it leaves the board.
    school.staff.api.send_events(session, &[app.event_now(ClientEventKind::End)]).await.expect("end");
    board_where(&mut events, WAIT, "the visit gone", |b| b.sessions.iter().all(|e| e.session_id != session)).await;

    // Signing out ends the stream at its next change (or refresh); staff cannot open one at all.
    let (second, _) = app.api.login(&school.leader.user.email, homeward_tests::PASSWORD).await.expect("sign in");
    let mut watched = second.board_events().await.expect("open a second stream");
    board_where(&mut watched, WAIT, "its first board", |_| true).await;
    second.logout().await.expect("sign out");
    start_visit(&app, &school.other_staff.api, "4 After Sign-out Street").await;
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            if watched.next().await.expect("readable").is_none() {
                return;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream of a signed-out leader ends");
    board_where(&mut events, WAIT, "the other leader still served", |b| b.sessions.len() == 1).await;
    let denied = school.staff.api.board_events().await.err().expect("staff are refused");
    assert_eq!(denied.status().map(|s| s.as_u16()), Some(403));
    let anonymous = ApiClient::new(&app.address).board_events().await.err().expect("anonymous is refused");
    assert_eq!(anonymous.status().map(|s| s.as_u16()), Some(401));
}

async fn leaders_message_the_worker_who_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Message School").await;
    let push = app.push_service().await;
    let worker_device = app.subscribe(&school.staff, &push).await;
    let session = start_visit(&app, &school.staff.api, "4 Message Mews").await;
    panic(&app, &school.staff.api, session).await;
    let alert = alert_of(&school, session).await;

    // No number held: no call; once the admin adds one, responders get it for a one-tap call.
    assert_eq!(school.leader.api.alert(alert).await.expect("the alert").worker_phone, None);
    school.admin.api.set_phone(school.staff.id(), Some("07700 900123")).await.expect("add the worker's number");
    assert_eq!(school.leader.api.alert(alert).await.expect("the alert").worker_phone.as_deref(), Some("+447700900123"));
    assert_eq!(school.dsl.api.alert(alert).await.expect("the alert").worker_phone.as_deref(), Some("+447700900123"));

    let view = school.leader.api.message_worker(alert, "  Are you OK?  ").await.expect("send");
    assert_eq!(view.messages.len(), 1);
    assert_eq!(view.messages[0].text, "Are you OK?");
    assert_eq!(view.messages[0].direction, MessageDirection::ToWorker);
    assert_eq!(view.messages[0].sender_name, school.leader.user.name);
    // The worker's phone is told.
    let received = push
        .wait_for(WAIT, |r| {
            r.iter().any(|m| m.subscription_id == worker_device.id && m.payload["purpose"] == "message")
        })
        .await;
    let pushed = received.iter().find(|m| m.payload["purpose"] == "message").expect("a message push");
    assert_eq!(pushed.payload["body"], "Are you OK?");
    assert_eq!(pushed.payload["url"], format!("/visit/{session}"));

    let seen = school.staff.api.session_messages(session).await.expect("the worker reads");
    assert_eq!(seen.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["Are you OK?"]);
    let answer = school.staff.api.answer_message(session, "I'm OK").await.expect("answer");
    assert_eq!(answer.direction, MessageDirection::FromWorker);
    assert_eq!(answer.alert_id, alert);
    let thread = school.leader.api.alert(alert).await.expect("the alert").messages;
    assert_eq!(thread.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["Are you OK?", "I'm OK"]);

    // Others may not answer for the worker, and empty or long messages are refused.
    let err = school.other_staff.api.answer_message(session, "I'm OK").await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{err}");
    let err = school.leader.api.answer_message(session, "I'm OK").await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403), "{err}");
    let err = school.leader.api.message_worker(alert, "   ").await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_text"), "{err}");
    let err = school.staff.api.message_worker(alert, "Are you OK?").await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403), "{err}");

    // Once resolved, nobody is asked any more.
    let resolve = ResolveAlertRequest { resolution: AlertResolution::WorkerSafe, notes: "Answered".into() };
    school.leader.api.resolve_alert(alert, &resolve).await.expect("resolve");
    let err = school.leader.api.message_worker(alert, "Still OK?").await.unwrap_err();
    assert_eq!(err.code(), Some("alert_closed"), "{err}");

    // A duress alarm is silent: no message may reach the worker's screen.
    school.staff.api.set_pins("2468", "1357").await.expect("pins");
    let quiet = start_visit(&app, &school.staff.api, "5 Duress Drive").await;
    school
        .staff
        .api
        .send_events(quiet, &[app.event_now(ClientEventKind::EndWithPin { pin: "1357".into() })])
        .await
        .expect("end with the duress PIN");
    let duress = alert_of(&school, quiet).await;
    let err = school.leader.api.message_worker(duress, "Are you OK?").await.unwrap_err();
    assert_eq!(err.code(), Some("duress_is_silent"), "{err}");
    assert!(school.staff.api.session_messages(quiet).await.expect("read").is_empty());
}

async fn the_review_queue_holds_concerns_incidents_and_alarms(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Review School").await;
    // 1. A resolved panic (a resolved alarm).
    let first = start_visit(&app, &school.staff.api, "6 First Street").await;
    panic(&app, &school.staff.api, first).await;
    let first_alert = alert_of(&school, first).await;
    let safe = ResolveAlertRequest { resolution: AlertResolution::FalseAlarm, notes: "Pressed in a pocket".into() };
    school.leader.api.resolve_alert(first_alert, &safe).await.expect("resolve");
    // 2. A visit whose outcome raised a concern.
    let second = start_visit(&app, &school.other_staff.api, "7 Second Street").await;
    school.other_staff.api.send_events(second, &[app.event_now(ClientEventKind::End)]).await.expect("end");
    school
        .other_staff
        .api
        .record_outcome(second, &outcome(Concern::Safeguarding, "Bruising seen on the younger child"))
        .await
        .expect("outcome");
    // 3. An incident.
    let third = start_visit(&app, &school.staff.api, "8 Third Street").await;
    panic(&app, &school.staff.api, third).await;
    let third_alert = alert_of(&school, third).await;
    let incident = ResolveAlertRequest { resolution: AlertResolution::PoliceCalled, notes: "Police attended".into() };
    school.leader.api.resolve_alert(third_alert, &incident).await.expect("resolve");
    // Not in the queue: a visit with no concern, and an open alert.
    let calm = start_visit(&app, &school.other_staff.api, "9 Calm Close").await;
    school.other_staff.api.send_events(calm, &[app.event_now(ClientEventKind::End)]).await.expect("end");
    school.other_staff.api.record_outcome(calm, &outcome(Concern::None, "All well")).await.expect("outcome");

    let queue = school.dsl.api.reviews("pending").await.expect("the queue");
    let kinds: Vec<(ReviewKind, Uuid)> = queue.iter().map(|i| (i.kind, i.subject_id)).collect();
    assert_eq!(
        kinds,
        vec![
            (ReviewKind::ResolvedAlarm, first_alert),
            (ReviewKind::Concern, second),
            (ReviewKind::Incident, third_alert)
        ],
        "oldest first"
    );
    assert!(queue.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at));
    assert_eq!(queue[1].notes, "Bruising seen on the younger child");
    assert_eq!(queue[1].worker_name, school.other_staff.user.name);
    assert!(queue[0].summary.contains("false alarm"), "{}", queue[0].summary);
    assert!(queue[2].summary.contains("police"), "{}", queue[2].summary);

    let done = school.dsl.api.mark_reviewed(second, "  Referred to children's social care  ").await.expect("mark");
    assert_eq!(done.action_taken.as_deref(), Some("Referred to children's social care"));
    assert_eq!(done.reviewed_by, Some(school.dsl.id()));
    assert!(done.reviewed_at.is_some());
    let err = school.dsl.api.mark_reviewed(second, "Again").await.unwrap_err();
    assert_eq!(err.code(), Some("already_reviewed"), "{err}");
    let pending = school.dsl.api.reviews("pending").await.expect("the queue");
    assert_eq!(pending.iter().map(|i| i.subject_id).collect::<Vec<_>>(), vec![first_alert, third_alert]);
    let reviewed = school.dsl.api.reviews("done").await.expect("done");
    assert_eq!(reviewed.iter().map(|i| i.subject_id).collect::<Vec<_>>(), vec![second]);
    assert_eq!(school.dsl.api.reviews("all").await.expect("all").len(), 3);

    // The calm visit is not an item; nor is anything of another school; the action is required.
    let err = school.dsl.api.mark_reviewed(calm, "Nothing").await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{err}");
    let other = app.school("Other Review School").await;
    assert!(other.dsl.api.reviews("all").await.expect("theirs").is_empty());
    let err = other.dsl.api.mark_reviewed(third_alert, "Not yours").await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{err}");
    let err = school.dsl.api.mark_reviewed(third_alert, " ").await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_action_taken"), "{err}");
    let err = school.leader.api.reviews("pending").await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403), "{err}");
    // The review is in the audit log.
    let log = school.dsl.api.audit(0, 1000).await.expect("audit");
    assert!(log.iter().any(|e| e.action == "review.done" && e.detail.contains("social care")));
}

async fn monthly_figures_count_and_time_alarms(backend: Backend) {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).single().expect("a time"));
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    let school = app.school("Figures School").await;
    // Two panics: owned after 30 s and 60 s, resolved after 120 s and 240 s; one a false alarm.
    let mut alerts = Vec::new();
    for (worker, own_after, resolve_after, resolution) in [
        (&school.staff.api, 30, 90, AlertResolution::FalseAlarm),
        (&school.other_staff.api, 60, 180, AlertResolution::Incident),
    ] {
        let session = start_visit(&app, worker, "10 Figure Road").await;
        panic(&app, worker, session).await;
        let alert = alert_of(&school, session).await;
        clock.advance(Duration::seconds(own_after));
        school.leader.api.acknowledge_alert(alert).await.expect("own");
        clock.advance(Duration::seconds(resolve_after));
        school
            .leader
            .api
            .resolve_alert(alert, &ResolveAlertRequest { resolution, notes: String::new() })
            .await
            .expect("resolve");
        alerts.push(alert);
    }
    // A visit that goes overdue and then checks in late.
    let late = start_visit(&app, &school.staff.api, "11 Late Lane").await;
    clock.advance(Duration::minutes(6));
    let overdue = tokio::time::timeout(WAIT, async {
        loop {
            if school.staff.api.session(late).await.expect("read").status == SessionStatus::Overdue {
                return;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    })
    .await;
    assert!(overdue.is_ok(), "the visit went overdue");
    school.staff.api.send_events(late, &[app.event_now(ClientEventKind::CheckIn)]).await.expect("late check-in");

    let figures = school.dsl.api.figures("2026-03").await.expect("figures");
    assert_eq!(figures.month, "2026-03");
    assert_eq!(figures.sessions_total, 3);
    assert_eq!(figures.sessions_by_kind.len(), 1);
    assert_eq!((figures.sessions_by_kind[0].name.as_str(), figures.sessions_by_kind[0].count), ("home_visit", 3));
    let panics = figures.alerts_by_kind.iter().find(|c| c.name == "panic").map(|c| c.count);
    let missed = figures.alerts_by_kind.iter().find(|c| c.name == "missed_deadline").map(|c| c.count);
    assert_eq!((panics, missed), (Some(2), Some(1)), "{:?}", figures.alerts_by_kind);
    // Informational alerts (the silent phones lost signal meanwhile) count by kind too, but are not timed.
    assert_eq!(figures.alerts_total, figures.alerts_by_kind.iter().map(|c| c.count).sum::<i64>());
    assert_eq!(figures.false_alarms, 1);
    assert_eq!(figures.incidents, 1);
    assert_eq!(figures.time_to_ownership.count, 2);
    assert_eq!(figures.time_to_ownership.median_seconds, Some(30));
    assert_eq!(figures.time_to_ownership.p95_seconds, Some(60));
    assert_eq!(figures.time_to_resolve.count, 2);
    assert_eq!(figures.time_to_resolve.median_seconds, Some(120));
    assert_eq!(figures.time_to_resolve.p95_seconds, Some(240));
    assert_eq!(figures.late_check_ins, 1);

    // Another month is empty; the current month is the default; bad months name the field.
    let april = school.dsl.api.figures("2026-04").await.expect("april");
    assert_eq!((april.sessions_total, april.alerts_total, april.time_to_resolve.median_seconds), (0, 0, None));
    let (status, body) =
        school.admin.api.raw(reqwest::Method::GET, "/api/v1/figures", None).await.expect("the default month");
    assert_eq!(status.as_u16(), 200);
    assert_eq!(body["month"], "2026-03");
    let err = school.dsl.api.figures("March").await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_month"), "{err}");
    let err = school.leader.api.figures("2026-03").await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
}

async fn the_csv_export_holds_sessions_and_outcomes_in_range(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Export School").await;
    let session = start_visit(&app, &school.staff.api, "=HYPERLINK(\"http://bad.example\")").await;
    school.staff.api.send_events(session, &[app.event_now(ClientEventKind::End)]).await.expect("end");
    school
        .staff
        .api
        .record_outcome(session, &outcome(Concern::Safeguarding, "Parent, \"upset\", asked us to leave"))
        .await
        .expect("outcome");
    let today = app.now().format("%Y-%m-%d").to_string();
    let csv = school.dsl.api.export_sessions(&today, &today).await.expect("export");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().expect("a header").iter().map(String::from).collect();
    assert_eq!(header[0], "session_id");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    let field = |name: &str| {
        let at = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
        rows[0][at].to_string()
    };
    assert_eq!(field("session_id"), session.to_string());
    assert_eq!(field("worker"), school.staff.user.name);
    assert_eq!(field("status"), "outcome_recorded");
    assert_eq!(field("concern"), "safeguarding");
    assert_eq!(field("child_seen"), "yes");
    assert_eq!(field("outcome_notes"), "Parent, \"upset\", asked us to leave");
    assert!(field("address").starts_with("'="), "a formula is defused: {}", field("address"));

    // Outside the range: nothing. The admin may export too; leaders and staff may not.
    let (status, _) = school
        .admin
        .api
        .raw(reqwest::Method::GET, &format!("/api/v1/export/sessions?from={today}&to={today}"), None)
        .await
        .expect("admin export");
    assert_eq!(status.as_u16(), 200);
    let earlier = (app.now() - Duration::days(3)).format("%Y-%m-%d").to_string();
    let yesterday = (app.now() - Duration::days(1)).format("%Y-%m-%d").to_string();
    let none = school.dsl.api.export_sessions(&earlier, &yesterday).await.expect("export");
    assert_eq!(none.lines().count(), 1, "only the header: {none}");
    let err = school.leader.api.export_sessions(&today, &today).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
    let err = school.dsl.api.export_sessions(&today, &earlier).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_to"), "{err}");
    // Another school's export does not hold this school's visit.
    let other = app.school("Other Export School").await;
    let theirs = other.dsl.api.export_sessions(&today, &today).await.expect("their export");
    assert!(!theirs.contains(&session.to_string()));
    // Exporting is recorded.
    let log = school.dsl.api.audit(0, 1000).await.expect("audit");
    assert!(log.iter().any(|e| e.action == "records.exported" && e.detail.starts_with("1 session")));
}

async fn the_signal_map_groups_repeated_gaps_and_marks(backend: Backend) {
    let app = spawn_app_shifted(backend, |_| {}).await;
    let school = app.school("Signal School").await;
    let dead_spot = Coordinates { latitude: 53.4808, longitude: -2.2426 };
    let nearby = Coordinates { latitude: 53.48085, longitude: -2.24255 };
    let elsewhere = Coordinates { latitude: 53.5, longitude: -2.3 };
    // Two visits each go quiet at the dead spot for ten minutes; a third never has a gap. The visits
    // start, then twenty minutes pass and their phones send what they recorded.
    let mut long_visit = low_risk_visit();
    long_visit.planned_start = app.now();
    long_visit.check_in_interval_minutes = None;
    let mut sessions = Vec::new();
    for worker in [&school.staff.api, &school.other_staff.api, &school.staff.api] {
        let session = worker.plan_session(&long_visit).await.expect("plan");
        worker
            .send_events(session.id, &[app.event_now(ClientEventKind::Start { location: None })])
            .await
            .expect("start");
        sessions.push(session.id);
    }
    app.advance(Duration::minutes(20));
    for ((worker, stop), session) in
        [(&school.staff.api, dead_spot), (&school.other_staff.api, nearby)].into_iter().zip(&sessions)
    {
        let session = *session;
        let pings = [
            ping(&app, Duration::minutes(-15), elsewhere, Some(80)),
            ping(&app, Duration::minutes(-12), stop, Some(79)),
            ping(&app, Duration::minutes(-2), elsewhere, Some(75)),
        ];
        worker.send_pings(session, &pings).await.expect("pings");
    }
    let steady = sessions[2];
    let steady_pings: Vec<LocationPing> =
        (0..5).map(|i| ping(&app, Duration::minutes(-10 + i * 2), elsewhere, None)).collect();
    school.staff.api.send_pings(steady, &steady_pings).await.expect("pings");
    // A member of staff marks another place by hand.
    let marked = Coordinates { latitude: 53.47, longitude: -2.25 };
    let mark = school
        .staff
        .api
        .mark_no_signal(&NoSignalMarkRequest {
            latitude: marked.latitude,
            longitude: marked.longitude,
            note: "Basement flats".into(),
        })
        .await
        .expect("mark");
    assert_eq!(mark.note, "Basement flats");

    let map = school.leader.api.signal_map(30).await.expect("the map");
    assert_eq!(map.cells.len(), 2, "{map:?}");
    let top = &map.cells[0];
    assert_eq!((top.gaps, top.marks, top.sessions, top.repeated), (2, 0, 2, true));
    assert!(dead_spot.distance_m(&Coordinates { latitude: top.latitude, longitude: top.longitude }) < 300.0);
    let hand = &map.cells[1];
    assert_eq!((hand.gaps, hand.marks, hand.repeated), (0, 1, false));
    assert!(marked.distance_m(&Coordinates { latitude: hand.latitude, longitude: hand.longitude }) < 300.0);

    // Staff may mark but not read the map; bad positions name the field.
    let err = school.staff.api.signal_map(30).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
    let err = school
        .staff
        .api
        .mark_no_signal(&NoSignalMarkRequest { latitude: 91.0, longitude: 0.0, note: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_latitude"), "{err}");
    let other = app.school("Other Signal School").await;
    assert!(other.leader.api.signal_map(30).await.expect("theirs").cells.is_empty());
}

async fn a_leader_without_push_is_told(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Push Status School").await;
    let status = school.leader.api.push_status().await.expect("status");
    assert!(status.needs_subscription);
    assert_eq!(status.devices, 0);
    assert!(status.message.as_deref().is_some_and(|m| m.contains("Settings")), "{status:?}");
    // Staff are not responders: no warning.
    assert!(!school.staff.api.push_status().await.expect("status").needs_subscription);
    let push = app.push_service().await;
    app.subscribe(&school.leader, &push).await;
    let status = school.leader.api.push_status().await.expect("status");
    assert!(!status.needs_subscription);
    assert_eq!(status.devices, 1);
    assert_eq!(status.message, None);
    // The DSL is a responder too.
    assert!(school.dsl.api.push_status().await.expect("status").needs_subscription);
}

async fn admins_change_roles_managers_and_deactivate(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Admin Change School").await;
    let staff = school.staff.id();
    let promoted = school
        .admin
        .api
        .update_user(
            staff,
            &UpdateUserRequest {
                roles: Some(vec![Role::Staff, Role::Leader]),
                line_manager_id: Some(school.dsl.id()),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(promoted.roles, vec![Role::Staff, Role::Leader]);
    assert_eq!(promoted.line_manager_id, Some(school.dsl.id()));
    assert!(promoted.active);
    // The new role counts at once.
    school.staff.api.board().await.expect("a leader now sees the board");

    let push = app.push_service().await;
    app.subscribe(&school.other_staff, &push).await;
    let gone = school
        .admin
        .api
        .update_user(school.other_staff.id(), &UpdateUserRequest { active: Some(false), ..Default::default() })
        .await
        .expect("deactivate");
    assert!(!gone.active);
    let err = school.other_staff.api.me().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401), "a deactivated user's sign-in stops working");
    let (devices,): (i64,) = sqlx::query_as("select count(*) from push_subscriptions where user_id = $1")
        .bind(school.other_staff.id().to_string())
        .fetch_one(&app.state.db.pool)
        .await
        .expect("count");
    assert_eq!(devices, 0, "their devices are removed");
    let back = school
        .admin
        .api
        .update_user(school.other_staff.id(), &UpdateUserRequest { active: Some(true), ..Default::default() })
        .await
        .expect("reactivate");
    assert!(back.active);

    let cleared = school
        .admin
        .api
        .update_user(staff, &UpdateUserRequest { clear_line_manager: true, ..Default::default() })
        .await
        .expect("clear");
    assert_eq!(cleared.line_manager_id, None);
    assert_eq!(cleared.roles, vec![Role::Staff, Role::Leader], "roles left alone");

    let refuse = |body: UpdateUserRequest, id: Uuid| {
        let api = school.admin.api.clone();
        async move { api.update_user(id, &body).await.unwrap_err() }
    };
    let err = refuse(UpdateUserRequest { roles: Some(vec![]), ..Default::default() }, staff).await;
    assert_eq!(err.code(), Some("invalid_roles"), "{err}");
    let err = refuse(UpdateUserRequest { line_manager_id: Some(staff), ..Default::default() }, staff).await;
    assert_eq!(err.code(), Some("invalid_line_manager_id"), "{err}");
    let err = refuse(UpdateUserRequest { active: Some(false), ..Default::default() }, school.admin.id()).await;
    assert_eq!(err.code(), Some("own_admin_account"), "{err}");
    let err =
        refuse(UpdateUserRequest { roles: Some(vec![Role::Staff]), ..Default::default() }, school.admin.id()).await;
    assert_eq!(err.code(), Some("own_admin_account"), "{err}");
    let other = app.school("Other Admin School").await;
    let err = refuse(UpdateUserRequest { active: Some(false), ..Default::default() }, other.staff.id()).await;
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{err}");
    other.staff.api.me().await.expect("another school's user is untouched");
    let err = school.leader.api.update_user(staff, &UpdateUserRequest::default()).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));

    // The retention period.
    assert_eq!(school.admin.api.retention().await.expect("read").location_retention_days, 30);
    assert_eq!(school.admin.api.set_retention(90).await.expect("set").location_retention_days, 90);
    assert_eq!(school.dsl.api.retention().await.expect("the DSL reads").location_retention_days, 90);
    let err = school.admin.api.set_retention(0).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_location_retention_days"), "{err}");
    let err = school.dsl.api.set_retention(10).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
    assert_eq!(other.admin.api.retention().await.expect("theirs").location_retention_days, 30);
    let log = school.admin.api.audit(0, 1000).await.expect("audit");
    assert!(log.iter().any(|e| e.action == "user.changed" && e.detail.contains("deactivated")));
    assert!(log.iter().any(|e| e.action == "school.retention_changed" && e.detail.contains("90")));
}

on_both_databases!(
    board_lists_live_visits_most_urgent_first,
    the_board_stream_turns_overdue_without_asking,
    leaders_message_the_worker_who_answers,
    the_review_queue_holds_concerns_incidents_and_alarms,
    monthly_figures_count_and_time_alarms,
    the_csv_export_holds_sessions_and_outcomes_in_range,
    the_signal_map_groups_repeated_gaps_and_marks,
    a_leader_without_push_is_told,
    admins_change_roles_managers_and_deactivate,
);
