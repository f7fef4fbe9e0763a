//! Screen tests for leaders, the DSL and admins: each screen rendered in its states (loading, empty,
//! error, live, overdue, broken chain, refused import, ...).

use std::rc::Rc;

use chrono::Duration;
use dioxus::prelude::*;
use homeward_shared::api::{
    AlertKind, AlertMessage, AlertResolution, AlertStatus, AlertView, ApprovalRules, AuditChainReport, AuditEntry,
    AuditVerdict, BoardAlert, BoardEntry, BoardPosition, BoardView, DurationFigures, EscalationPlanView, ImportErrors,
    MessageDirection, MonthlyFigures, NamedCount, ReviewItem, ReviewKind, RowError, SignalCell, SignalMap, UserView,
};
use homeward_shared::session::{ApprovalStatus, SessionStatus};
use homeward_shared::{EscalationPlan, Role};
use uuid::Uuid;

use crate::components::{PushBanner, RoleNav};
use crate::projection::tests::{active_view, planned_view, t};
use crate::views::admin::{AdminData, AdminScreen, Outcome, PlanForm};
use crate::views::alert::AlertScreen;
use crate::views::approvals::ApprovalsScreen;
use crate::views::audit::AuditScreen;
use crate::views::board::{BoardScreen, Live};
use crate::views::messages::MessagesPanel;
use crate::views::records::{RecordsScreen, duration_words, preview};
use crate::views::reviews::ReviewsScreen;

#[derive(Clone)]
struct View(Rc<dyn Fn() -> Element>);

impl PartialEq for View {
    fn eq(&self, _: &Self) -> bool {
        false
    }
}

#[component]
fn Harness(view: View) -> Element {
    (view.0)()
}

fn render(view: impl Fn() -> Element + 'static) -> String {
    let mut dom = VirtualDom::new_with_props(Harness, HarnessProps { view: View(Rc::new(view)) });
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

// The live board --------------------------------------------------------------------------------------

fn entry(n: u128, status: SessionStatus, deadline_minutes: i64) -> BoardEntry {
    BoardEntry {
        session_id: Uuid::from_u128(n),
        worker_id: Uuid::from_u128(100 + n),
        worker_name: format!("Worker {n}"),
        kind: "home_visit".into(),
        sub_kind: Some("procedural".into()),
        address: format!("{n} Board Street"),
        status,
        alarm: None,
        deadline: Some(t(deadline_minutes)),
        seconds_to_deadline: None,
        started_at: Some(t(0)),
        last_position: None,
        battery_percent: None,
        alerts: vec![],
    }
}

fn board(entries: Vec<BoardEntry>) -> BoardView {
    BoardView {
        generated_at: t(0),
        map_tile_url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".into(),
        sessions: entries,
    }
}

fn board_html(view: Option<BoardView>, live: Live, signal: Option<Result<SignalMap, String>>) -> String {
    render(move || {
        rsx! {
            BoardScreen { board: view.clone(), live: live.clone(), now: t(10), signal_map: signal.clone() }
        }
    })
}

#[test]
fn board_loading_and_connecting() {
    let html = board_html(None, Live::Connecting, None);
    assert!(html.contains(r#"data-testid="board""#), "{html}");
    assert!(html.contains(r#"data-live="false""#));
    assert!(html.contains("Connecting"));
    assert!(html.contains(r#"data-testid="loading""#));
    assert!(!html.contains("board-empty"));
}

#[test]
fn board_empty_when_nobody_is_out() {
    let html = board_html(
        Some(board(vec![])),
        Live::Connected,
        Some(Ok(SignalMap { cell_size_m: 200, gap_seconds: 300, since: t(0), cells: vec![] })),
    );
    assert!(html.contains(r#"data-testid="board-empty""#), "{html}");
    assert!(html.contains(r#"data-live="true""#));
    assert!(!html.contains("board-map"), "no map without positions");
    assert!(html.contains("No signal gaps"));
}

#[test]
fn board_lists_overdue_and_alarm_with_words_and_the_map() {
    let mut alarm = entry(1, SessionStatus::Alarm, 30);
    alarm.alerts = vec![BoardAlert {
        id: Uuid::from_u128(9),
        kind: AlertKind::Panic,
        status: AlertStatus::Acknowledged,
        owner_id: Some(Uuid::from_u128(77)),
        owner_name: Some("Priya Okafor".into()),
    }];
    alarm.last_position =
        Some(BoardPosition { latitude: 51.4545, longitude: -2.5879, accuracy_m: 12.0, at: t(9), age_seconds: 60 });
    alarm.battery_percent = Some(9);
    let overdue = entry(2, SessionStatus::Overdue, 8);
    let active = entry(3, SessionStatus::Active, 40);
    let html = board_html(Some(board(vec![alarm, overdue, active])), Live::Connected, None);
    assert_eq!(count(&html, r#"data-testid="board-item""#), 3, "{html}");
    // The server's order is kept: alarm, overdue, active.
    let at = |s: &str| html.find(&format!(r#"data-status="{s}""#)).unwrap_or(usize::MAX);
    assert!(at("alarm") < at("overdue") && at("overdue") < at("active"));
    // Status in words as well as colour.
    assert!(html.contains("Alarm raised") && html.contains("Overdue") && html.contains("Under way"));
    assert!(html.contains("OVERDUE +02:00"), "counted from the deadline at now: {html}");
    assert!(html.contains("Deadline in 30:00"));
    assert!(html.contains("PANIC: owned by Priya Okafor"));
    assert!(html.contains("Battery 9% (low)"));
    assert!(html.contains("60 s ago"), "the position's age");
    assert!(html.contains(r#"data-testid="open-alert""#));
    assert!(html.contains(&format!("/alerts/{}", Uuid::from_u128(9))));
    // The map: tiles from the configured server, and a numbered marker for the one position.
    assert!(html.contains(r#"data-testid="board-map""#));
    assert!(html.contains("https://tile.openstreetmap.org/"));
    assert_eq!(count(&html, r#"data-testid="map-marker""#), 1);
    assert!(html.contains("the numbered list above has every visit"));
}

#[test]
fn an_overdue_visit_never_shows_time_to_go_when_the_phone_clock_lags() {
    // The deadline is a minute ahead by this phone's clock, but the server has marked it overdue.
    let html = board_html(Some(board(vec![entry(1, SessionStatus::Overdue, 11)])), Live::Connected, None);
    assert!(html.contains("OVERDUE +00:00"), "{html}");
    assert!(!html.contains("Deadline in"));
}

#[test]
fn board_says_when_it_is_not_live() {
    let html =
        board_html(Some(board(vec![entry(1, SessionStatus::Active, 30)])), Live::Reconnecting("offline".into()), None);
    assert!(html.contains("Not live (offline)"), "{html}");
    assert!(html.contains("banner bad"));
    assert_eq!(count(&html, r#"data-testid="board-item""#), 1, "the last board stays on screen");
}

#[test]
fn board_shows_repeated_signal_gaps_and_errors() {
    let cells = vec![SignalCell {
        latitude: 51.45,
        longitude: -2.58,
        gaps: 3,
        marks: 1,
        sessions: 2,
        last_at: t(0),
        repeated: true,
    }];
    let html = board_html(
        Some(board(vec![])),
        Live::Connected,
        Some(Ok(SignalMap { cell_size_m: 200, gap_seconds: 300, since: t(0), cells })),
    );
    assert!(html.contains(r#"data-repeated="true""#), "{html}");
    assert!(html.contains("3 gap(s) on 2 visit(s), 1 mark(s)"));
    let html = board_html(Some(board(vec![])), Live::Connected, Some(Err("HTTP 500".into())));
    assert!(html.contains("The signal map could not be loaded: HTTP 500"));
}

// An alert --------------------------------------------------------------------------------------------

fn alert(status: AlertStatus, kind: AlertKind) -> AlertView {
    let mut session = active_view(None);
    session.status = SessionStatus::Overdue;
    AlertView {
        id: Uuid::from_u128(9),
        session_id: session.id,
        worker_id: session.worker_id,
        worker_name: session.worker_name.clone(),
        worker_phone: None,
        kind,
        status,
        steps_fired: 2,
        steps_total: 4,
        instruction: Some("Phone the worker now".into()),
        raised_at: t(60),
        acknowledged_by: None,
        acknowledged_by_name: None,
        acknowledged_at: None,
        resolved_by: None,
        resolved_at: None,
        resolution: None,
        resolution_notes: None,
        stood_down_at: None,
        last_location: Some(homeward_shared::Coordinates { latitude: 51.45, longitude: -2.58 }),
        session,
        deliveries: vec![],
        delivery_summary: vec!["sent to 1 of Priya Okafor's devices at 10:01:00".into()],
        messages: vec![],
        trail: vec![homeward_shared::api::TrailPoint { latitude: 51.45, longitude: -2.58, accuracy_m: 9.0, at: t(59) }],
    }
}

fn alert_html(view: AlertView, me: Uuid) -> String {
    render(move || {
        rsx! {
            AlertScreen { id: "9", details: Some(Ok(view.clone())), me: Some(me), busy: false, error: None, on_action: |_| {} }
        }
    })
}

#[test]
fn alert_escalating_offers_ownership_messages_and_resolve() {
    let html = alert_html(alert(AlertStatus::Escalating, AlertKind::MissedDeadline), Uuid::from_u128(77));
    assert!(html.contains("Missed deadline"), "{html}");
    assert!(html.contains("Step 2 of 4"));
    assert!(html.contains("Instruction: Phone the worker now"));
    assert!(html.contains("Dog in the garden"), "household notes for the responder");
    assert!(html.contains(r#"data-testid="last-position""#));
    assert!(html.contains(r#"data-testid="trail""#) && html.contains("51.45000, -2.58000 (±9 m)"), "{html}");
    assert!(html.contains("Priya Okafor&#39;s devices") || html.contains("Priya Okafor's devices"));
    assert!(html.contains(r#"data-testid="take-ownership""#));
    assert_eq!(count(&html, r#"data-testid="quick-question""#), 3);
    assert_eq!(count(&html, r#"name="resolution""#), 4);
    assert!(html.contains(r#"data-testid="resolve""#));
    assert!(html.contains(r#"data-status="escalating""#));
}

#[test]
fn alert_offers_a_one_tap_call_when_the_workers_number_is_held() {
    let without = alert_html(alert(AlertStatus::Escalating, AlertKind::Panic), Uuid::from_u128(77));
    assert!(without.contains(r#"data-testid="no-phone""#) && !without.contains("tel:"), "{without}");
    let mut view = alert(AlertStatus::Escalating, AlertKind::Panic);
    view.worker_phone = Some("+447700900123".into());
    let with = alert_html(view, Uuid::from_u128(77));
    assert!(with.contains(r#"href="tel:+447700900123""#), "{with}");
    assert!(with.contains(r#"data-testid="call-worker""#) && !with.contains(r#"data-testid="no-phone""#));
}

#[test]
fn alert_owned_by_another_says_who_and_keeps_resolve() {
    let mut view = alert(AlertStatus::Acknowledged, AlertKind::Panic);
    view.acknowledged_by = Some(Uuid::from_u128(5));
    view.acknowledged_by_name = Some("Sam Leader".into());
    view.messages = vec![AlertMessage {
        id: Uuid::from_u128(1),
        alert_id: view.id,
        session_id: view.session_id,
        direction: MessageDirection::FromWorker,
        sender_id: view.worker_id,
        sender_name: "Dana Whitfield".into(),
        text: "I'm OK".into(),
        sent_at: t(62),
    }];
    let html = alert_html(view, Uuid::from_u128(77));
    assert!(html.contains("owned by Sam Leader"), "{html}");
    assert!(!html.contains(r#"data-testid="take-ownership""#), "already owned");
    assert!(html.contains(r#"data-direction="from_worker""#));
    assert!(html.contains("I&#39;m OK") || html.contains("I'm OK"));
    assert!(html.contains("PANIC"));
    assert!(html.contains("banner bad"), "a red alert");
}

#[test]
fn alert_resolved_offers_no_actions_and_duress_no_messages() {
    let mut view = alert(AlertStatus::Resolved, AlertKind::MissedDeadline);
    view.resolution = Some(AlertResolution::FalseAlarm);
    let html = alert_html(view, Uuid::from_u128(77));
    assert!(html.contains("resolved: False alarm"), "{html}");
    assert!(!html.contains("take-ownership") && !html.contains(r#"data-testid="resolve""#));
    let html = alert_html(alert(AlertStatus::Escalating, AlertKind::Duress), Uuid::from_u128(77));
    assert!(html.contains("A duress alarm is silent"), "{html}");
    assert_eq!(count(&html, "quick-question"), 0);
    // The worker's own visit is for another leader.
    let view = alert(AlertStatus::Escalating, AlertKind::MissedDeadline);
    let worker = view.worker_id;
    let html = alert_html(view, worker);
    assert!(html.contains("another leader must handle it"), "{html}");
    assert!(!html.contains("take-ownership"));
}

#[test]
fn alert_loading_and_failing() {
    let html = render(|| rsx! { AlertScreen { id: "9", details: None } });
    assert!(html.contains("Loading the alert"), "{html}");
    let html = render(|| rsx! { AlertScreen { id: "9", details: Some(Err("not found".into())) } });
    assert!(html.contains("could not be loaded: not found"), "{html}");
}

// Approvals -------------------------------------------------------------------------------------------

#[test]
fn approvals_states() {
    let html = render(|| rsx! { ApprovalsScreen { pending: None, error: None, done: vec![], on_decide: |_| {} } });
    assert!(html.contains(r#"data-testid="loading""#), "{html}");
    let html =
        render(|| rsx! { ApprovalsScreen { pending: Some(Ok(vec![])), error: None, done: vec![], on_decide: |_| {} } });
    assert!(html.contains(r#"data-testid="approvals-empty""#), "{html}");
    let mut pending = planned_view(None);
    pending.approval.status = ApprovalStatus::Pending;
    pending.risk_assessment = homeward_shared::RiskAssessment::with_overall(homeward_shared::RiskLevel::Medium);
    let html = render(move || {
        rsx! {
            ApprovalsScreen {
                pending: Some(Ok(vec![pending.clone()])),
                error: Some("approval_required".into()),
                done: vec!["Approved: Sam (1 Road)".into()],
                on_decide: |_| {},
            }
        }
    });
    assert!(html.contains(r#"data-testid="approval""#), "{html}");
    assert!(html.contains("Risk: medium"));
    assert!(html.contains("Environment and location"), "the risk assessment's factors are shown");
    for testid in ["approve", "require-companion", "reject"] {
        assert!(html.contains(&format!(r#"data-testid="{testid}""#)), "{testid}");
    }
    assert!(html.contains("Approved: Sam"));
    assert!(html.contains(r#"data-testid="problem""#));
}

// Reviews ---------------------------------------------------------------------------------------------

fn review(kind: ReviewKind, reviewed: bool) -> ReviewItem {
    ReviewItem {
        subject_id: Uuid::new_v4(),
        kind,
        session_id: Uuid::from_u128(42),
        worker_name: "Dana Whitfield".into(),
        session_kind: "home_visit".into(),
        pupil_reference: Some("ADM-1".into()),
        occurred_at: t(0),
        summary: "Missed deadline, resolved: a false alarm".into(),
        notes: "Phone died".into(),
        reviewed_by: reviewed.then(|| Uuid::from_u128(3)),
        reviewed_by_name: reviewed.then(|| "Tomasz Brennan".into()),
        reviewed_at: reviewed.then(|| t(5)),
        action_taken: reviewed.then(|| "Spoke to Dana".into()),
    }
}

#[test]
fn review_queue_states() {
    let html = render(
        || rsx! { ReviewsScreen { items: Some(Ok(vec![])), error: None, show_done: false, on_toggle_done: |_| {}, on_mark: |_| {} } },
    );
    assert!(html.contains(r#"data-testid="reviews-empty""#), "{html}");
    let html = render(
        || rsx! { ReviewsScreen { items: Some(Err("HTTP 403".into())), error: None, show_done: false, on_toggle_done: |_| {}, on_mark: |_| {} } },
    );
    assert!(html.contains("Could not load the queue: HTTP 403"), "{html}");
    let items = vec![review(ReviewKind::ResolvedAlarm, false), review(ReviewKind::Concern, true)];
    let html = render(
        move || rsx! { ReviewsScreen { items: Some(Ok(items.clone())), error: None, show_done: true, on_toggle_done: |_| {}, on_mark: |_| {} } },
    );
    assert_eq!(count(&html, r#"data-testid="review-item""#), 2, "{html}");
    assert!(html.contains(r#"data-kind="resolved_alarm""#) && html.contains(r#"data-kind="concern""#));
    assert_eq!(count(&html, r#"data-testid="mark-reviewed""#), 1, "only the waiting one can be marked");
    assert!(html.contains("Reviewed by Tomasz Brennan: Spoke to Dana"));
    assert!(html.contains("Safeguarding concern"));
}

// Figures and the export ------------------------------------------------------------------------------

fn figures() -> MonthlyFigures {
    MonthlyFigures {
        month: "2026-11".into(),
        from: t(0),
        to: t(60 * 24 * 30),
        sessions_by_kind: vec![
            NamedCount { name: "home_visit".into(), count: 12 },
            NamedCount { name: "travel".into(), count: 3 },
        ],
        sessions_total: 15,
        alerts_by_kind: vec![NamedCount { name: "panic".into(), count: 2 }],
        alerts_total: 2,
        false_alarms: 1,
        incidents: 0,
        time_to_ownership: DurationFigures { count: 2, median_seconds: Some(45), p95_seconds: Some(200) },
        time_to_resolve: DurationFigures { count: 0, median_seconds: None, p95_seconds: None },
        late_check_ins: 4,
    }
}

#[test]
fn records_show_figures_with_a_chart_and_the_export() {
    let csv = "session_id,worker,x\nabc,\"Whitfield, Dana\",y\n";
    let exported = preview(csv, "2026-11-01", "2026-11-30", Some("blob:x".into()));
    assert_eq!(exported.rows, 1);
    assert_eq!(exported.first[0][1], "Whitfield, Dana");
    let html = render(move || {
        rsx! {
            RecordsScreen {
                month: "2026-11",
                figures: Some(Ok(figures())),
                from: "2026-11-01",
                to: "2026-11-30",
                export: Some(Ok(exported.clone())),
                exporting: false,
                on_month: |_| {},
                on_from: |_| {},
                on_to: |_| {},
                on_export: |_| {},
            }
        }
    });
    assert!(html.contains("Sessions: 15"), "{html}");
    assert!(html.contains("Late check-ins: 4"));
    assert!(html.contains("False alarms: 1"));
    assert!(html.contains("median 45 s, 95th percentile 3 min 20 s (over 2 alarm(s))"));
    assert!(html.contains("Time to resolve: median none"));
    assert_eq!(count(&html, r#"data-testid="bar""#), 3, "a bar per kind");
    assert!(html.contains("Home visit") && html.contains("PANIC"), "bars are named in words");
    assert!(html.contains(r#"data-rows="1""#));
    assert!(html.contains(r#"download="homeward-sessions-2026-11-01-to-2026-11-30.csv""#));
    assert_eq!(count(&html, r#"data-testid="export-row""#), 1);
    assert_eq!(duration_words(Some(7200)), "2 h 0 min");
}

#[test]
fn records_loading_and_errors() {
    let html = render(|| {
        rsx! {
            RecordsScreen {
                month: "2026-11",
                figures: Some(Err("invalid month".into())),
                from: "",
                to: "",
                export: Some(Err("`to` must not be before `from`".into())),
                exporting: true,
                on_month: |_| {},
                on_from: |_| {},
                on_to: |_| {},
                on_export: |_| {},
            }
        }
    });
    assert!(html.contains("The figures could not be loaded: invalid month"), "{html}");
    assert!(html.contains("The export failed"));
    assert!(html.contains("Exporting…"));
}

// The audit log ---------------------------------------------------------------------------------------

fn entry_at(seq: i64) -> AuditEntry {
    AuditEntry {
        seq,
        at: t(seq),
        actor_id: None,
        action: "session.started".into(),
        subject: "session:1".into(),
        detail: "happened".into(),
        prev_hash: "0".into(),
        hash: "1".into(),
    }
}

#[test]
fn audit_says_plainly_intact_or_broken() {
    let intact = AuditChainReport {
        intact: true,
        entries: 2,
        first_broken_seq: None,
        message: "the audit log is intact: all 2 entries check out".into(),
        verdict: AuditVerdict::Intact,
        signed_heads: 0,
        newest_head_at: None,
    };
    let html = render(
        move || rsx! { AuditScreen { report: Some(Ok(intact.clone())), entries: Some(Ok(vec![entry_at(1), entry_at(2)])), on_check: |_| {} } },
    );
    assert!(html.contains(r#"data-intact="true""#), "{html}");
    assert!(html.contains("Intact."));
    assert_eq!(count(&html, r#"data-testid="audit-entry""#), 2);
    let broken = AuditChainReport {
        intact: false,
        entries: 2,
        first_broken_seq: Some(2),
        message: "entry 2 has been altered since it was written".into(),
        verdict: AuditVerdict::Altered,
        signed_heads: 1,
        newest_head_at: None,
    };
    let html =
        render(move || rsx! { AuditScreen { report: Some(Ok(broken.clone())), entries: None, on_check: |_| {} } });
    assert!(html.contains(r#"data-intact="false""#), "{html}");
    assert!(html.contains("BROKEN: the log has been altered."));
    assert!(html.contains("first bad entry: 2"));
    assert!(html.contains("banner bad"));
    for (verdict, words) in [
        (AuditVerdict::Rewritten, "BROKEN: the log was rewritten"),
        (AuditVerdict::Truncated, "BROKEN: entries were deleted from the end of the log"),
    ] {
        let report = AuditChainReport {
            intact: false,
            entries: 2,
            first_broken_seq: Some(1),
            message: "what was found".into(),
            verdict,
            signed_heads: 1,
            newest_head_at: None,
        };
        let html =
            render(move || rsx! { AuditScreen { report: Some(Ok(report.clone())), entries: None, on_check: |_| {} } });
        assert!(
            html.contains(words) && html.contains("banner bad") && html.contains(r#"data-intact="false""#),
            "{html}"
        );
    }
    let html = render(|| rsx! { AuditScreen { report: None, entries: None, on_check: |_| {} } });
    assert!(html.contains("Checking the audit log"));
}

// Admin -----------------------------------------------------------------------------------------------

fn user(n: u128, name: &str, roles: Vec<Role>, manager: Option<u128>, active: bool) -> UserView {
    UserView {
        id: Uuid::from_u128(n),
        school_id: Uuid::from_u128(1),
        school_name: "Demo".into(),
        email: format!("{}@demo.test", name.to_lowercase().replace(' ', ".")),
        name: name.into(),
        roles,
        line_manager_id: manager.map(Uuid::from_u128),
        active,
        has_pin: false,
        phone: None,
    }
}

fn admin_html(data: AdminData, outcome: Option<Outcome>) -> String {
    render(move || rsx! { AdminScreen { data: data.clone(), outcome: outcome.clone(), on_action: |_| {} } })
}

#[test]
fn admin_lists_staff_with_managers_plans_rules_and_retention() {
    let plan = EscalationPlan::school_default();
    let data = AdminData {
        users: Some(Ok(vec![
            user(1, "Priya Okafor", vec![Role::Leader], None, true),
            user(2, "Dana Whitfield", vec![Role::Staff], Some(1), true),
            user(3, "Old Colleague", vec![Role::Staff], Some(1), false),
        ])),
        plans: Some(Ok(vec![EscalationPlanView {
            id: Uuid::from_u128(7),
            name: plan.name.clone(),
            is_default: true,
            steps: plan.steps.clone(),
            repeat_every_seconds: plan.repeat_every_seconds,
            updated_at: t(0),
        }])),
        rules: Some(Ok(ApprovalRules::default())),
        retention: Some(Ok(30)),
    };
    let html = admin_html(data, Some(Outcome::Done("Added Sam".into())));
    assert_eq!(count(&html, r#"data-testid="staff-row""#), 3, "{html}");
    assert!(html.contains("<td>Priya Okafor</td>"), "the manager by name");
    assert_eq!(count(&html, r#"data-testid="deactivate""#), 2);
    assert_eq!(count(&html, r#"data-testid="reactivate""#), 1);
    assert!(html.contains(r#"data-active="false""#));
    assert_eq!(count(&html, r#"data-testid="plan-step""#), plan.steps.len());
    assert!(!html.contains(r#"data-testid="plan-error""#), "the default plan is valid");
    assert!(html.contains(r#"data-testid="rules""#));
    assert!(html.contains(r#"value="30""#));
    assert!(html.contains(r#"data-testid="admin-done""#));
    assert!(html.contains(r#"data-testid="import""#) && html.contains(r#"data-testid="add-user""#));
}

#[test]
fn admin_shows_each_refused_import_row() {
    let errors = ImportErrors {
        code: "invalid_rows".into(),
        message: "2 row(s) are wrong; nothing was imported".into(),
        rows: vec![
            RowError { line: 2, message: "email: not an e-mail".into() },
            RowError { line: 5, message: "unknown role `boss`".into() },
        ],
    };
    let html = admin_html(AdminData::default(), Some(Outcome::ImportRefused(errors)));
    assert_eq!(count(&html, r#"data-testid="import-row-error""#), 2, "{html}");
    assert!(html.contains("Line 5: unknown role"));
    assert!(html.contains("nothing was imported"));
    assert!(html.contains(r#"data-testid="loading""#), "staff still loading");
}

#[test]
fn the_plan_editor_validates_like_the_server() {
    let plan = EscalationPlan::school_default();
    let view = EscalationPlanView {
        id: Uuid::from_u128(7),
        name: plan.name,
        is_default: true,
        steps: plan.steps,
        repeat_every_seconds: plan.repeat_every_seconds,
        updated_at: t(0),
    };
    let form = PlanForm::from_view(&view);
    let request = form.validate().expect("the default plan is valid");
    assert_eq!(request.steps.len(), view.steps.len());
    for (got, want) in request.steps.iter().zip(&view.steps) {
        assert_eq!(got.delay_seconds, want.delay_seconds, "minutes round-trip to the same seconds");
        assert_eq!(got.instruction, want.instruction);
        let sorted = |r: &[homeward_shared::Recipient]| {
            let mut names: Vec<String> = r.iter().map(|x| format!("{x:?}")).collect();
            names.sort();
            names
        };
        assert_eq!(sorted(&got.recipients), sorted(&want.recipients));
    }
    let mut bad = form.clone();
    bad.steps[1].delay_minutes = "soon".into();
    assert!(bad.validate().unwrap_err().contains("Step 2 delay"));
    let mut nobody = form.clone();
    nobody.steps[0] = Default::default();
    nobody.steps[0].delay_minutes = "0".into();
    assert!(nobody.validate().unwrap_err().contains("Step 1: choose who is told"));
    let mut unnamed = form;
    unnamed.name = "  ".into();
    assert!(unnamed.validate().unwrap_err().starts_with("name"));
}

// Every screen: the role navigation and the no-push warning --------------------------------------------

#[test]
fn each_role_sees_its_own_screens_and_a_leader_without_push_is_told() {
    let staff = render(|| rsx! { RoleNav { roles: vec![Role::Staff] } });
    assert!(!staff.contains("role-nav"), "{staff}");
    let leader = render(|| rsx! { RoleNav { roles: vec![Role::Leader] } });
    assert!(leader.contains("nav-board") && leader.contains("nav-approvals"), "{leader}");
    assert!(!leader.contains("nav-reviews") && !leader.contains("nav-admin"));
    let dsl = render(|| rsx! { RoleNav { roles: vec![Role::Dsl] } });
    assert!(dsl.contains("nav-reviews") && dsl.contains("nav-records") && dsl.contains("nav-audit"), "{dsl}");
    let admin = render(|| rsx! { RoleNav { roles: vec![Role::Admin] } });
    assert!(admin.contains("nav-admin") && !admin.contains("nav-approvals"), "{admin}");

    let banner = render(|| rsx! { PushBanner { message: Some("Turn them on in Settings.".to_string()) } });
    assert!(banner.contains(r#"data-testid="no-push""#), "{banner}");
    assert!(banner.contains("Alerts cannot reach you"));
    assert!(banner.contains(r#"href="/settings""#));
    let none = render(|| rsx! { PushBanner { message: None } });
    assert!(!none.contains("no-push"));
}

// The worker's messages -------------------------------------------------------------------------------

#[test]
fn the_worker_answers_a_leader_in_one_tap() {
    let asked = AlertMessage {
        id: Uuid::from_u128(1),
        alert_id: Uuid::from_u128(9),
        session_id: Uuid::from_u128(42),
        direction: MessageDirection::ToWorker,
        sender_id: Uuid::from_u128(5),
        sender_name: "Priya Okafor".into(),
        text: "Are you OK?".into(),
        sent_at: t(1),
    };
    let waiting = vec![asked.clone()];
    let html = render(
        move || rsx! { MessagesPanel { messages: waiting.clone(), sending: false, note: None, live: true, on_reply: |_| {}, on_no_signal: |_| {} } },
    );
    assert!(html.contains(r#"data-waiting="true""#), "{html}");
    assert!(html.contains("A leader is asking"));
    assert_eq!(count(&html, r#"data-testid="quick-reply""#), 3);
    assert!(html.contains(r#"data-testid="no-signal-here""#));
    let mut answer = asked.clone();
    answer.direction = MessageDirection::FromWorker;
    answer.text = "I'm OK".into();
    let answered = vec![asked, answer];
    let html = render(
        move || rsx! { MessagesPanel { messages: answered.clone(), sending: false, note: Some("Marked".to_string()), live: false, on_reply: |_| {}, on_no_signal: |_| {} } },
    );
    assert!(html.contains(r#"data-waiting="false""#), "{html}");
    assert_eq!(count(&html, "quick-reply"), 0);
    assert!(!html.contains("no-signal-here"), "only during a live visit");
    assert!(html.contains(r#"data-testid="visit-note""#));
    let html = render(
        || rsx! { MessagesPanel { messages: vec![], sending: false, note: None, live: true, on_reply: |_| {}, on_no_signal: |_| {} } },
    );
    assert!(!html.contains("visit-messages"));
    let _ = Duration::zero();
}
