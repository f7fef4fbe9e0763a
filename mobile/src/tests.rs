//! Screen tests without a browser: each screen rendered to HTML (`VirtualDom` + `dioxus-ssr`) in its
//! states (loading, empty, error, offline, overdue, ...), checking the attributes the end-to-end tests
//! and the worker rely on. The last tests render the whole app, router and all, from saved state.

use std::rc::Rc;

use chrono::Duration;
use dioxus::prelude::*;
use homeward_shared::api::{ClientEvent, ClientEventKind};
use homeward_shared::session::{ApprovalStatus, SessionStatus};
use uuid::Uuid;

use crate::components::{CardModel, StatusBar, StatusModel};
use crate::platform::{BatteryLevel, Fix, MemoryStorage, Platform, Storage};
use crate::projection::tests::{active_view, planned_view, t};
use crate::projection::{self, Projected};
use crate::queue::{Queue, Queued};
use crate::state::{AppState, Auth, Connection, Reading, SessionCache};
use crate::views::{alert::*, outcome::*, plan::*, settings::*, sign_in::*, today::*, visit::*};

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

/// Render what `view` builds, inside a component (event handlers need one).
fn render(view: impl Fn() -> Element + 'static) -> String {
    let mut dom = VirtualDom::new_with_props(Harness, HarnessProps { view: View(Rc::new(view)) });
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

// Sign in ---------------------------------------------------------------------------------------------

fn sign_in(error: Option<&'static str>, busy: bool) -> String {
    render(move || {
        rsx! {
            SignInScreen {
                email: "dana@demo.homeward.test",
                password: "",
                error: error.map(String::from),
                busy,
                notice: None,
                on_email: |_| {},
                on_password: |_| {},
                on_submit: |_| {},
            }
        }
    })
}

#[test]
fn sign_in_has_the_fields_and_button() {
    let html = sign_in(None, false);
    assert!(html.contains(r#"name="email""#), "{html}");
    assert!(html.contains(r#"name="password""#));
    assert!(html.contains(r#"type="password""#));
    assert!(html.contains(r#"data-testid="sign-in""#));
    assert!(html.contains("dana@demo.homeward.test"));
    assert!(!html.contains("sign-in-error"));
}

#[test]
fn sign_in_shows_its_error_and_busy_state() {
    let html = sign_in(Some("that e-mail and password do not match"), true);
    assert!(html.contains(r#"data-testid="sign-in-error""#), "{html}");
    assert!(html.contains("do not match"));
    assert!(html.contains("Signing in…"));
    assert!(html.contains("disabled"));
}

// Today -----------------------------------------------------------------------------------------------

fn cache(views: Vec<homeward_shared::api::SessionView>) -> SessionCache {
    SessionCache {
        sessions: views.into_iter().map(|v| (v.id, v)).collect(),
        planned_end_hints: Default::default(),
        loaded_at: Some(t(0)),
    }
}

fn today(
    cards: Vec<CardModel>,
    needs: Vec<NeedsMe>,
    loading: bool,
    loaded: bool,
    error: Option<&str>,
    offline: bool,
) -> String {
    let error = error.map(String::from);
    render(move || {
        rsx! {
            TodayScreen {
                cards: cards.clone(),
                needs: needs.clone(),
                loading,
                loaded,
                error: error.clone(),
                offline,
                starting: None,
                on_open: |_| {},
                on_start: |_| {},
                on_request_approval: |_| {},
            }
        }
    })
}

#[test]
fn today_loading() {
    let html = today(vec![], vec![], true, false, None, false);
    assert!(html.contains(r#"data-testid="today""#), "{html}");
    assert!(html.contains(r#"data-testid="loading""#));
    assert!(!html.contains("today-empty"));
    assert!(html.contains(r#"data-testid="plan-visit""#));
    assert!(html.contains(r#"href="/plan""#));
    assert!(html.contains(r#"data-testid="open-settings""#));
}

#[test]
fn today_empty() {
    let html = today(vec![], vec![], false, true, None, false);
    assert!(html.contains(r#"data-testid="today-empty""#), "{html}");
    assert_eq!(count(&html, "session-card"), 0);
}

#[test]
fn today_error_without_any_saved_data() {
    let html = today(vec![], vec![], false, false, Some("HTTP 500"), false);
    assert!(html.contains(r#"data-testid="problem""#), "{html}");
    assert!(html.contains("Could not load your visits: HTTP 500"));
    assert!(!html.contains("today-empty"), "an error is not an empty list");
}

#[test]
fn today_lists_sessions_with_status_approval_and_start() {
    let planned = planned_view(None);
    let mut needs_approval = planned_view(None);
    needs_approval.id = Uuid::from_u128(43);
    needs_approval.approval.status = ApprovalStatus::Pending;
    let mut active = active_view(Some(20));
    active.id = Uuid::from_u128(44);
    let (cards, needs) = today_model(&cache(vec![planned, needs_approval, active]), &Queue::default(), t(5));
    assert!(needs.is_empty());
    let html = today(cards, needs, false, true, None, false);
    assert_eq!(count(&html, r#"data-testid="session-card""#), 3, "{html}");
    assert!(html.contains(&format!(r#"data-session-id="{}""#, Uuid::from_u128(42))));
    assert!(html.contains(r#"data-status="planned""#));
    assert!(html.contains(r#"data-status="active""#));
    assert!(html.contains("No approval needed"));
    assert!(html.contains("Waiting for a leader"), "{html}");
    // Start is offered on both planned cards, but only enabled where no approval is awaited.
    assert_eq!(count(&html, r#"data-testid="start-visit""#), 2);
    assert_eq!(count(&html, "disabled"), 1);
    // The live visit comes first, with its countdown.
    assert!(html.find(r#"data-status="active""#) < html.find(r#"data-status="planned""#));
    assert!(html.contains("15:00"));
}

#[test]
fn today_offline_shows_saved_visits_and_says_so() {
    let (cards, needs) = today_model(&cache(vec![planned_view(None)]), &Queue::default(), t(0));
    let html = today(cards, needs, false, true, Some("could not reach the server"), true);
    assert!(html.contains(r#"data-testid="offline""#), "{html}");
    assert!(!html.contains(r#"data-testid="problem""#), "offline is explained once, not as an error");
    assert_eq!(count(&html, r#"data-testid="session-card""#), 1);
}

#[test]
fn today_overdue_visit_needs_me_and_a_queued_start_shows_active() {
    let overdue = active_view(None);
    let mut planned = planned_view(None);
    planned.id = Uuid::from_u128(45);
    let mut queue = Queue::default();
    queue.push(Queued::Event {
        session_id: planned.id,
        event: ClientEvent { id: Uuid::new_v4(), at: t(50), kind: ClientEventKind::Start { location: None } },
    });
    let (cards, needs) = today_model(&cache(vec![overdue, planned]), &queue, t(61));
    assert!(needs.iter().any(|n| matches!(n, NeedsMe::Overdue { .. })), "{needs:?}");
    let html = today(cards, needs, false, true, None, false);
    assert!(html.contains(r#"data-status="overdue""#), "{html}");
    assert!(html.contains("OVERDUE +01:00"));
    assert!(html.contains("card-countdown overdue"));
    assert!(html.contains(r#"data-testid="needs-me""#));
    assert!(html.contains("1 waiting to be sent"), "the offline start is shown, waiting");
    assert_eq!(count(&html, r#"data-status="active""#), 1, "the queued start already shows as active");
}

#[test]
fn today_needs_me_for_outcomes_and_approvals() {
    let mut ended = active_view(None);
    ended.status = SessionStatus::Ended;
    ended.ended_at = Some(t(30));
    let mut required = planned_view(None);
    required.id = Uuid::from_u128(46);
    required.approval.status = ApprovalStatus::Required;
    let (cards, needs) = today_model(&cache(vec![ended, required]), &Queue::default(), t(31));
    let html = today(cards, needs, false, true, None, false);
    assert!(html.contains("Record the outcome"), "{html}");
    assert!(html.contains(r#"data-testid="request-approval""#));
    assert!(html.contains(r#"data-status="ended""#));
}

// Plan ------------------------------------------------------------------------------------------------

fn plan(
    form: PlanForm,
    errors: FieldErrors,
    server_error: Option<&str>,
    companions: Companions,
    offline: bool,
) -> String {
    let server_error = server_error.map(String::from);
    render(move || {
        rsx! {
            PlanScreen {
                form: form.clone(),
                errors: errors.clone(),
                server_error: server_error.clone(),
                busy: false,
                companions: companions.clone(),
                locating: false,
                location_note: None,
                offline,
                on_change: |_| {},
                on_use_location: |_| {},
                on_submit: |_| {},
            }
        }
    })
}

#[test]
fn plan_form_has_every_field_with_defaults() {
    let html = plan(PlanForm::new(t(0)), Default::default(), None, Companions::Loading, false);
    for name in [
        r#"select name="kind""#,
        r#"select name="sub_kind""#,
        r#"name="address""#,
        r#"name="latitude""#,
        r#"name="longitude""#,
        r#"name="pupil_reference""#,
        r#"textarea name="household_notes""#,
        r#"name="planned_start""#,
        r#"name="expected_duration_minutes""#,
        r#"name="check_in_interval_minutes""#,
        r#"select name="companion_id""#,
        r#"select name="risk_overall""#,
        r#"data-testid="use-location""#,
        r#"data-testid="submit-plan""#,
    ] {
        assert!(html.contains(name), "{name} missing in {html}");
    }
    for factor in homeward_shared::RiskFactor::ALL {
        let select = format!(r#"select name="risk_{}""#, factor_key(factor));
        assert!(html.contains(&select), "{select}");
    }
    assert!(html.contains(r#"type="datetime-local""#));
    assert!(html.contains(&local_input_value(t(0))), "planned start defaults to now");
    assert!(html.contains(r#"value="60""#));
    assert_eq!(count(&html, r#"value="low" selected"#), 8, "every factor and the overall start low");
    assert!(!html.contains("data-testid=\"error-"));
    assert!(html.contains("Loading colleagues"));
}

#[test]
fn plan_shows_field_errors_beside_their_fields() {
    let mut form = PlanForm::new(t(0));
    form.set("latitude", "123".into());
    form.set("longitude", "0".into());
    form.set("expected_duration_minutes", "2".into());
    form.set("pupil_reference", "Jamie".into());
    let errors = form.validate(t(0)).unwrap_err();
    let html = plan(form, errors, None, Companions::List(vec![(Uuid::from_u128(9), "Sam Lee".into())]), false);
    for key in ["latitude", "expected_duration_minutes", "pupil_reference", "address"] {
        assert!(html.contains(&format!(r#"data-testid="error-{key}""#)), "{key} in {html}");
    }
    assert!(html.contains("latitude must be between -90 and 90"));
    assert!(html.contains("Sam Lee"));
    assert!(!html.contains("plan-error"));
}

#[test]
fn plan_shows_a_server_error_and_offline() {
    let html = plan(
        PlanForm::new(t(0)),
        Default::default(),
        Some("a high-risk visit needs a companion"),
        Companions::Unavailable("Your account cannot list colleagues.".into()),
        true,
    );
    assert!(html.contains(r#"data-testid="plan-error""#), "{html}");
    assert!(html.contains("needs a companion"));
    assert!(html.contains("You are offline"));
    assert!(html.contains("cannot list colleagues"));
}

// The active visit ------------------------------------------------------------------------------------

fn visit_model(status_at: i64, panic: PanicView, end: EndStage, offline: bool) -> VisitModel {
    let view = active_view(None);
    let projected = projection::project(&view, None, &[]);
    VisitModel::new(&view, &projected, t(status_at), true, end, panic, 0, offline)
}

fn visit(model: VisitModel) -> String {
    render(move || {
        rsx! {
            VisitScreen {
                model: model.clone(),
                on_start: |_| {},
                on_check_in: |_| {},
                on_extend: |_| {},
                on_end: |_| {},
                on_pin: |_| {},
                on_confirm_end: |_| {},
                on_cancel_end: |_| {},
                on_panic_armed: |_| {},
                on_panic_cancel: |_| {},
            }
        }
    })
}

#[test]
fn visit_active_shows_countdown_and_every_action() {
    let html = visit(visit_model(10, PanicView::Idle, EndStage::Idle, false));
    assert!(html.contains(r#"data-testid="visit-status""#), "{html}");
    assert!(html.contains(r#"data-status="active""#));
    assert!(html.contains(">active</span>"));
    assert!(html.contains(r#"data-testid="countdown""#));
    assert!(html.contains(">50:00</p>"));
    assert!(html.contains(r#"data-overdue="false""#));
    for testid in ["check-in", "extend-15", "extend-30", "extend-60", "end-visit", "panic"] {
        assert!(html.contains(&format!(r#"data-testid="{testid}""#)), "{testid}");
    }
    assert!(!html.contains("call-999"));
    assert!(!html.contains(r#"name="pin""#));
}

#[test]
fn visit_overdue() {
    let html = visit(visit_model(63, PanicView::Idle, EndStage::Idle, false));
    assert!(html.contains(r#"data-status="overdue""#), "{html}");
    assert!(html.contains("OVERDUE +03:00"));
    assert!(html.contains(r#"class="countdown overdue""#));
    assert!(html.contains(r#"data-overdue="true""#));
}

#[test]
fn visit_offline_keeps_the_clock_and_says_so() {
    let html = visit(visit_model(59, PanicView::Idle, EndStage::Idle, true));
    assert!(html.contains(">01:00</p>"), "{html}");
    assert!(html.contains("Offline: the clock keeps running"));
}

#[test]
fn visit_end_asks_for_the_pin() {
    let end = EndStage::AskingPin { pin: String::new(), error: Some("Enter your PIN to end the visit.".into()) };
    let html = visit(visit_model(10, PanicView::Idle, end, false));
    assert!(html.contains(r#"name="pin""#), "{html}");
    assert!(html.contains(r#"data-testid="confirm-end""#));
    assert!(html.contains(r#"data-testid="error-pin""#));
    assert!(!html.contains(r#"data-testid="end-visit""#));
}

#[test]
fn visit_panic_countdown_can_be_cancelled() {
    let html = visit(visit_model(10, PanicView::Countdown(3), EndStage::Idle, false));
    assert!(html.contains(r#"data-testid="panic-countdown""#), "{html}");
    assert!(html.contains(r#"data-testid="panic-cancel""#));
    assert!(html.contains(r#"<span class="panic-seconds">3</span>"#));
    assert!(!html.contains(r#"data-testid="panic""#), "the button gives way to the countdown");
}

#[test]
fn visit_panic_that_cannot_be_sent_offers_999() {
    let html = visit(visit_model(10, PanicView::Failing, EndStage::Idle, true));
    assert!(html.contains(r#"data-testid="call-999""#), "{html}");
    assert!(html.contains(r#"href="tel:999""#));
    assert!(!html.contains("panic-sent"));
}

#[test]
fn visit_panic_sent() {
    let html = visit(visit_model(10, PanicView::Sent, EndStage::Idle, false));
    assert!(html.contains(r#"data-testid="panic-sent""#), "{html}");
    assert!(!html.contains(r#"data-testid="call-999""#));
    let html = visit(visit_model(10, PanicView::Sending, EndStage::Idle, false));
    assert!(html.contains(r#"data-testid="panic-sending""#));
}

#[test]
fn visit_planned_and_ended() {
    let view = planned_view(None);
    let projected = projection::project(&view, None, &[]);
    let model = VisitModel::new(&view, &projected, t(0), false, EndStage::Idle, PanicView::Idle, 0, false);
    let html = visit(model.clone());
    assert!(html.contains(r#"data-testid="start-visit""#), "{html}");
    assert!(!html.contains(r#"data-testid="countdown""#));
    assert!(!html.contains(r#"data-testid="safety-net""#), "no warning when the plan is fine");
    let warned =
        VisitModel { safety_net: vec!["step 2 at Tue 10 Mar 10:05: nobody it names can be reached".into()], ..model };
    let html = visit(warned);
    assert!(html.contains(r#"data-testid="safety-net""#), "{html}");
    assert!(html.contains("step 2 at Tue 10 Mar 10:05: nobody it names can be reached"), "{html}");

    let view = active_view(None);
    let end = ClientEvent { id: Uuid::new_v4(), at: t(20), kind: ClientEventKind::End };
    let projected: Projected = projection::project(&view, None, &[&end]);
    let model = VisitModel::new(&view, &projected, t(21), false, EndStage::Idle, PanicView::Idle, 1, false);
    let html = visit(model);
    assert!(html.contains(r#"data-status="ended""#), "{html}");
    assert!(html.contains(r#"href="/visit/00000000-0000-0000-0000-00000000002a/outcome""#));
    assert!(html.contains("1 action(s) on this visit waiting to be sent"));
    assert!(!html.contains(r#"data-testid="panic""#));
}

// Outcome ---------------------------------------------------------------------------------------------

fn outcome(state: OutcomeState, error: Option<&str>) -> String {
    let error = error.map(String::from);
    render(move || {
        rsx! {
            OutcomeScreen {
                id: Uuid::from_u128(42),
                title: "Home visit: education",
                state: state.clone(),
                form: OutcomeForm { child_seen: true, ..Default::default() },
                error: error.clone(),
                on_change: |_| {},
                on_submit: |_| {},
            }
        }
    })
}

#[test]
fn outcome_form_has_its_fields() {
    let html = outcome(OutcomeState::Ready, None);
    for field in [
        r#"name="child_seen""#,
        r#"name="responsible_adult_present""#,
        r#"name="entered_premises""#,
        r#"select name="concern""#,
        r#"textarea name="notes""#,
        r#"data-testid="submit-outcome""#,
    ] {
        assert!(html.contains(field), "{field} in {html}");
    }
    assert_eq!(count(&html, r#"type="checkbox""#), 3);
    assert_eq!(count(&html, "checked"), 1);
    assert!(html.contains(r#"value="safeguarding""#));
}

#[test]
fn outcome_states() {
    let html = outcome(OutcomeState::Loading, None);
    assert!(html.contains(r#"data-testid="loading""#), "{html}");
    let html = outcome(OutcomeState::NotEnded(Some("that PIN is not right; try again".into())), None);
    assert!(html.contains("the end was refused (that PIN is not right"), "{html}");
    assert!(html.contains(r#"href="/visit/00000000-0000-0000-0000-00000000002a""#));
    assert!(!html.contains("submit-outcome"));
    let html = outcome(OutcomeState::AlreadyRecorded, None);
    assert!(html.contains(r#"data-testid="outcome-recorded""#));
    let html = outcome(OutcomeState::Ready, Some("Notes are at most 5000 characters."));
    assert!(html.contains(r#"data-testid="outcome-error""#));
}

#[test]
fn outcome_validation_uses_the_shared_limit() {
    let form = OutcomeForm { notes: "x".repeat(5_001), ..Default::default() };
    assert!(form.validate().is_err());
    let mut form = OutcomeForm::default();
    form.apply(OutcomeChange::Safeguarding(true));
    form.apply(OutcomeChange::Checked("entered_premises", true));
    let outcome = form.validate().unwrap();
    assert_eq!(outcome.concern, homeward_shared::session::Concern::Safeguarding);
    assert!(outcome.entered_premises && !outcome.child_seen);
}

// Settings --------------------------------------------------------------------------------------------

fn settings(checks: Option<Vec<Check>>, confirm_sign_out: bool) -> String {
    render(move || {
        rsx! {
            SettingsScreen {
                name: "Dana Whitfield",
                email: "dana@demo.homeward.test",
                school: "Demo School",
                permission: "not asked yet",
                push_status: Some(Err("Notifications were not allowed".to_string())),
                enabling: false,
                checks: checks.clone(),
                checking: false,
                waiting: 2,
                confirm_sign_out,
                on_enable: |_| {},
                on_self_test: |_| {},
                on_sign_out: |_| {},
                on_sign_out_everywhere: |_| {},
                on_keep_signed_in: |_| {},
            }
        }
    })
}

#[test]
fn settings_before_the_self_test() {
    let html = settings(None, false);
    for testid in ["enable-notifications", "run-self-test", "sign-out", "sign-out-everywhere", "notifications-status"] {
        assert!(html.contains(&format!(r#"data-testid="{testid}""#)), "{testid} in {html}");
    }
    assert!(!html.contains("check-server"));
}

#[test]
fn settings_self_test_results_say_ok_or_not() {
    let checks = vec![
        Check { key: "notifications", label: "Notification permission", ok: false, detail: "blocked".into() },
        Check { key: "location", label: "Location", ok: true, detail: "a fix to within 12 m".into() },
        Check { key: "battery", label: "Battery", ok: false, detail: "Battery: not available on this device".into() },
        Check { key: "server", label: "Server reachable", ok: true, detail: "the server answers".into() },
        Check { key: "push", label: "Push subscription", ok: false, detail: "not subscribed".into() },
    ];
    let html = settings(Some(checks), true);
    assert!(html.contains(r#"data-testid="check-notifications" data-ok="false""#), "{html}");
    assert!(html.contains(r#"data-testid="check-location" data-ok="true""#));
    assert!(html.contains(r#"data-testid="check-battery" data-ok="false""#));
    assert!(html.contains(r#"data-testid="check-server" data-ok="true""#));
    assert!(html.contains(r#"data-testid="check-push" data-ok="false""#));
    assert!(html.contains("not available on this device"));
    assert!(html.contains(r#"data-testid="sign-out-warning""#));
    assert!(html.contains("2 action(s) have not reached the server"));
}

// Status bar and alert --------------------------------------------------------------------------------

fn status(model: StatusModel) -> String {
    render(move || rsx! { StatusBar { model: model.clone() } })
}

#[test]
fn status_bar_says_what_the_device_cannot_give() {
    let model = StatusModel::new(
        &Reading::Unavailable("Location: permission denied; allow location for this site".into()),
        &Reading::Unavailable("Battery: not available on this device".into()),
        Connection::Offline,
        3,
        false,
        t(0),
    );
    let html = status(model);
    assert!(html.contains(r#"data-testid="status-location">permission denied"#), "{html}");
    assert!(html.contains("Battery: </span><span data-testid=\"status-battery\">not available on this device"));
    assert!(html.contains(r#"data-testid="status-connection">offline<"#));
    assert!(html.contains(r#"data-testid="queue-count">3<"#));
}

#[test]
fn status_bar_with_readings() {
    let fix = Fix {
        coordinates: homeward_shared::Coordinates::parse(53.8, -1.55).unwrap(),
        accuracy_m: 12.4,
        at: t(0) - Duration::seconds(30),
    };
    let model = StatusModel::new(
        &Reading::Available(fix),
        &Reading::Available(BatteryLevel { percent: 76, charging: false }),
        Connection::Online,
        0,
        false,
        t(0),
    );
    let html = status(model);
    assert!(html.contains("±12 m, 30 s ago"), "{html}");
    assert!(html.contains(">76%<"));
    assert!(html.contains(r#"data-testid="status-connection">online<"#));
    assert!(html.contains(r#"data-testid="queue-count">0<"#));
}

#[test]
fn alert_page_shows_its_id() {
    let html = render(|| rsx! { AlertScreen { id: "abc-123", details: None } });
    assert!(html.contains(r#"data-alert-id="abc-123""#), "{html}");
    assert!(html.contains("Alert abc-123"));
}

// The whole app ---------------------------------------------------------------------------------------

fn signed_in_storage(sessions: SessionCache, queue: Queue) -> Rc<MemoryStorage> {
    let storage = Rc::new(MemoryStorage::default());
    let view = planned_view(None);
    let auth = Auth {
        sign_in: homeward_shared::client::SignIn {
            access_expires_at: chrono::Utc::now() + Duration::hours(1),
            ..homeward_shared::client::SignIn::token_only("token")
        },
        user: homeward_shared::api::UserView {
            id: view.worker_id,
            school_id: view.school_id,
            school_name: "Demo School".into(),
            email: "dana@demo.homeward.test".into(),
            name: "Dana Whitfield".into(),
            roles: vec![homeward_shared::Role::Staff],
            line_manager_id: None,
            active: true,
            has_pin: true,
            phone: None,
        },
    };
    storage.set(crate::state::AUTH_KEY, &serde_json::to_string(&auth).unwrap()).unwrap();
    storage.set(crate::state::SESSIONS_KEY, &serde_json::to_string(&sessions).unwrap()).unwrap();
    queue.save(storage.as_ref()).unwrap();
    storage
}

#[derive(Clone)]
struct Saved(Rc<MemoryStorage>);

impl PartialEq for Saved {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Storage for Saved {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key)
    }
    fn set(&self, key: &str, value: &str) -> Result<(), String> {
        self.0.set(key, value)
    }
    fn remove(&self, key: &str) {
        self.0.remove(key)
    }
}

#[component]
fn TestApp(path: String, storage: Saved) -> Element {
    use_context_provider(|| Rc::new(dioxus::history::MemoryHistory::with_initial_path(&path)) as Rc<dyn History>);
    use_context_provider(|| {
        let mut platform = Platform::in_memory();
        platform.storage = Rc::new(storage.clone());
        AppState::load(platform)
    });
    rsx! {
        Router::<crate::Route> {}
    }
}

/// The app as it opens from saved state, with no server: background tasks are started but never run.
fn open_app(path: &str, storage: Rc<MemoryStorage>) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = runtime.enter();
    let mut dom = VirtualDom::new_with_props(TestApp, TestAppProps { path: path.into(), storage: Saved(storage) });
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

#[test]
fn the_app_reopens_offline_with_saved_visits() {
    let storage = signed_in_storage(cache(vec![planned_view(None)]), Queue::default());
    let html = open_app("/today", storage);
    assert!(html.contains(r#"data-testid="today""#), "{html}");
    assert!(html.contains(r#"data-testid="session-card""#));
    assert!(html.contains(r#"data-testid="status-connection">online<"#));
    assert!(html.contains(r#"data-testid="queue-count">0<"#));
    assert!(html.contains("Dana Whitfield"));
}

#[test]
fn the_app_reopens_a_visit_with_its_queued_check_in_applied() {
    let view = active_view(Some(20));
    let mut queue = Queue::default();
    // Checked in at 10:15 while offline, then the app was closed.
    queue.push(Queued::Event {
        session_id: view.id,
        event: ClientEvent { id: Uuid::new_v4(), at: t(15), kind: ClientEventKind::CheckIn },
    });
    let storage = signed_in_storage(cache(vec![view.clone()]), queue);
    let html = open_app(&format!("/visit/{}", view.id), storage.clone());
    assert!(html.contains(r#"data-testid="queue-count">1<"#), "{html}");
    assert!(
        html.contains(&format!("Deadline {}", crate::labels::clock_time(t(35)))),
        "the check-in moved the deadline"
    );
    assert!(html.contains(r#"data-testid="panic""#));
    // Nothing was lost or sent by opening.
    assert_eq!(Queue::load(storage.as_ref()).len(), 1);
}

#[test]
fn a_visit_not_yet_on_the_phone_is_loading() {
    let storage = signed_in_storage(SessionCache::default(), Queue::default());
    let html = open_app(&format!("/visit/{}", Uuid::from_u128(99)), storage);
    assert!(html.contains(r#"data-testid="loading""#), "{html}");
    assert!(html.contains("Loading the visit"));
    let html = open_app("/visit/not-a-uuid", signed_in_storage(SessionCache::default(), Queue::default()));
    assert!(html.contains("not a visit"), "{html}");
}

#[test]
fn signed_out_screens_send_you_to_sign_in() {
    let html = open_app("/today", Rc::new(MemoryStorage::default()));
    assert!(html.contains("Sign in to continue"), "{html}");
    assert!(!html.contains(r#"data-testid="today""#));
    let html = open_app("/signin", Rc::new(MemoryStorage::default()));
    assert!(html.contains(r#"data-testid="sign-in""#), "{html}");
}
