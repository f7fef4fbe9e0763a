//! Request and response bodies of the JSON API under `/api/v1`. Plain serde types: the server, the
//! phone and the tests all speak through these.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::session::{AlarmKind, ApprovalStatus, Outcome, SessionStatus};
use chrono::{DateTime, Utc};

use crate::{Coordinates, EscalationStep, RiskAssessment, Role};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A device sign-in: a short-lived access token for every request, and a refresh credential that
/// renews it (`POST /api/v1/auth/refresh`) for as long as the device keeps using it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When `token` stops working; renew before then.
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
    /// This device's sign-in (what "sign out this device" ends).
    pub device_id: Uuid,
    /// Renews the sign-in; used once, then replaced by the one the renewal answers with.
    pub refresh_token: String,
    /// When the device sign-in ends unless it is renewed before (every renewal moves it on).
    pub refresh_expires_at: DateTime<Utc>,
}

/// Renew a device sign-in. `next_refresh_token` is the credential the device will hold after this
/// renewal, made by the device (at least 32 random characters) and saved before it sends the request: if
/// the answer is lost, the same request sent again is answered again, while anyone else presenting the
/// old credential ends the device's sign-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    pub refresh_token: String,
    pub next_refresh_token: String,
}

/// One of my signed-in devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceView {
    pub id: Uuid,
    pub signed_in_at: DateTime<Utc>,
    pub last_renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether this is the device asking.
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    pub id: Uuid,
    pub school_id: Uuid,
    pub school_name: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub line_manager_id: Option<Uuid>,
    pub active: bool,
    /// Whether the user has set an end-of-visit PIN (the PIN itself is never sent back).
    pub has_pin: bool,
    /// The mobile number text messages go to (international form). Shown only to admins and to the
    /// person themself: a staff member's phone number is never shown to other staff.
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateUserRequest {
    pub email: String,
    pub name: String,
    pub password: String,
    pub roles: Vec<Role>,
    pub line_manager_id: Option<Uuid>,
    /// A mobile number for text-message alerts, e.g. `+44 7700 900123` or `07700 900123`.
    #[serde(default)]
    pub phone: Option<String>,
}

/// Set or clear (`null`) a user's mobile number for text-message alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetPhoneRequest {
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub imported: usize,
    pub users: Vec<UserView>,
}

/// One rejected CSV row: its line number in the file and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

/// The body of a refused CSV import: every bad row, and nothing was imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportErrors {
    pub code: String,
    pub message: String,
    pub rows: Vec<RowError>,
}

/// The end-of-visit PINs: the safe PIN ends normally; the duress PIN looks the same on the phone but
/// raises a silent alarm.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetPinsRequest {
    pub safe_pin: String,
    pub duress_pin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanSessionRequest {
    /// `home_visit`, `offsite_meeting`, `on_site_alone` or `travel`.
    pub kind: String,
    /// For home visits: `safe_and_well`, `procedural`, `education` or `other`.
    pub sub_kind: Option<String>,
    pub companion_id: Option<Uuid>,
    pub address: String,
    pub location: Option<Coordinates>,
    pub geofence_radius_m: Option<i64>,
    pub pupil_reference: Option<String>,
    #[serde(default)]
    pub household_notes: String,
    pub planned_start: DateTime<Utc>,
    pub expected_duration_minutes: i64,
    pub check_in_interval_minutes: Option<i64>,
    /// Defaults to the school's default plan.
    pub escalation_plan_id: Option<Uuid>,
    pub risk_assessment: RiskAssessment,
    /// Ask for approval at once when the school's rules require it (the default).
    #[serde(default = "yes")]
    pub submit_for_approval: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalView {
    pub status: ApprovalStatus,
    pub reason: Option<String>,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    pub id: Uuid,
    pub school_id: Uuid,
    pub worker_id: Uuid,
    pub worker_name: String,
    pub companion_id: Option<Uuid>,
    pub kind: String,
    pub sub_kind: Option<String>,
    pub address: String,
    pub location: Option<Coordinates>,
    pub geofence_radius_m: i64,
    pub pupil_reference: Option<String>,
    /// Shown to the worker and companion, and to responders once an alert exists for the visit;
    /// empty otherwise.
    pub household_notes: String,
    pub planned_start: DateTime<Utc>,
    pub expected_duration_minutes: i64,
    pub check_in_interval_minutes: Option<i64>,
    pub escalation_plan_id: Uuid,
    pub risk_assessment: RiskAssessment,
    pub approval: ApprovalView,
    pub status: SessionStatus,
    /// Present only to leaders, the DSL and admins: the worker's own phone never learns of a duress alarm.
    pub alarm: Option<AlarmKind>,
    pub deadline: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub last_check_in: Option<DateTime<Utc>>,
    pub late_check_ins: i64,
    pub outcome: Option<Outcome>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectRequest {
    pub reason: String,
}

/// What the worker's phone reports, each with a client-generated id and the time it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientEventKind {
    Start {
        location: Option<Coordinates>,
    },
    CheckIn,
    Extend {
        minutes: i64,
    },
    End,
    /// Ending with a PIN: the server tells the safe PIN from the duress PIN.
    EndWithPin {
        pin: String,
    },
    Panic {
        location: Option<Coordinates>,
    },
    Outcome {
        outcome: Outcome,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "ClientEventWire")]
pub struct ClientEvent {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: ClientEventKind,
}

/// The same JSON read field by field, so a wrong value is reported with its field's name (a flattened,
/// tagged enum would hide it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEventWire {
    id: Uuid,
    at: DateTime<Utc>,
    #[serde(rename = "type")]
    kind: String,
    location: Option<Coordinates>,
    minutes: Option<i64>,
    pin: Option<String>,
    outcome: Option<Outcome>,
}

impl TryFrom<ClientEventWire> for ClientEvent {
    type Error = String;

    fn try_from(w: ClientEventWire) -> Result<Self, String> {
        let needs = |field: &str| format!("`{field}` is required for a `{}` event", w.kind);
        let kind = match w.kind.as_str() {
            "start" => ClientEventKind::Start { location: w.location },
            "check_in" => ClientEventKind::CheckIn,
            "extend" => ClientEventKind::Extend { minutes: w.minutes.ok_or_else(|| needs("minutes"))? },
            "end" => ClientEventKind::End,
            "end_with_pin" => ClientEventKind::EndWithPin { pin: w.pin.clone().ok_or_else(|| needs("pin"))? },
            "panic" => ClientEventKind::Panic { location: w.location },
            "outcome" => ClientEventKind::Outcome { outcome: w.outcome.clone().ok_or_else(|| needs("outcome"))? },
            other => {
                return Err(format!(
                    "`type`: unknown event type `{other}`; use start, check_in, extend, end, end_with_pin, panic or outcome"
                ));
            }
        };
        Ok(ClientEvent { id: w.id, at: w.at, kind })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventBatch {
    pub events: Vec<ClientEvent>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventBatchResponse {
    /// Events stored and applied by this request.
    pub applied: Vec<Uuid>,
    /// Events the server already had: nothing changed for them.
    pub duplicates: Vec<Uuid>,
    pub session: SessionView,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LocationPing {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: f64,
    pub battery_percent: Option<i64>,
}

impl LocationPing {
    /// The id of a ping taken at `at`: a version-7 UUID that begins with that time, so pings arrive in
    /// the order of their ids and each is added at the end of the server's index on them. Random
    /// (version 4) ids are still accepted, but every one of them lands on a different page of that
    /// index, which halves what SQLite's one writer can store (BENCHMARKS.md).
    pub fn new_id(at: DateTime<Utc>) -> Uuid {
        let seconds = u64::try_from(at.timestamp()).unwrap_or(0);
        Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, at.timestamp_subsec_nanos()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PingBatch {
    pub pings: Vec<LocationPing>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PingBatchResponse {
    pub stored: usize,
    pub duplicates: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeRequest {
    /// Optional client-generated id, so a resent form is recorded once.
    pub id: Option<Uuid>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationPlanView {
    pub id: Uuid,
    pub name: String,
    pub is_default: bool,
    pub steps: Vec<EscalationStep>,
    pub repeat_every_seconds: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationPlanRequest {
    pub name: String,
    pub steps: Vec<EscalationStep>,
    pub repeat_every_seconds: Option<i64>,
    #[serde(default)]
    pub is_default: bool,
}

/// The school's rules for what a visit needs before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalRules {
    pub safe_and_well_needs_approval: bool,
    /// Visits at or above this overall risk need approval; `null` means risk alone never does.
    pub approval_from_risk: Option<crate::RiskLevel>,
    pub high_risk_needs_companion: bool,
}

impl Default for ApprovalRules {
    fn default() -> Self {
        Self {
            safe_and_well_needs_approval: true,
            approval_from_risk: Some(crate::RiskLevel::Medium),
            high_risk_needs_companion: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What the check of the audit log found, worst first when more than one applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuditVerdict {
    /// Every entry checks out with the key, and the log reaches every signed daily head.
    Intact,
    /// An entry was changed or removed: its hash no longer matches its contents or its neighbours.
    Altered,
    /// The chain hangs together, but not with the key: someone recomputed the hashes themselves.
    Rewritten,
    /// Entries were deleted from the end: a signed daily head names an entry the log no longer has.
    Truncated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditChainReport {
    /// `verdict` is `intact`.
    pub intact: bool,
    pub entries: i64,
    /// The first entry that is wrong or missing.
    pub first_broken_seq: Option<i64>,
    /// What was found, in words.
    pub message: String,
    pub verdict: AuditVerdict,
    /// How many signed daily heads (kept outside the database) the log was checked against.
    pub signed_heads: i64,
    /// When the newest of them was signed.
    pub newest_head_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: String,
}

/// What raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A deadline passed with no check-in (amber).
    MissedDeadline,
    /// The panic button (red).
    Panic,
    /// The duress PIN (red, silent on the worker's phone).
    Duress,
    /// Informational: the phone's battery fell below 15%.
    LowBattery,
    /// Informational: no location ping for a while during a live visit.
    SignalLost,
    /// Informational: the phone is outside the visit's geofence but the visit has not ended.
    LeftGeofence,
    /// Informational: a planned visit has not started 15 minutes after its planned start.
    MissedStart,
    /// Informational, before the visit: a step of its plan would reach nobody with a working channel.
    SafetyNet,
}

impl AlertKind {
    /// Informational alerts tell people; they do not run the escalation plan.
    pub fn is_informational(self) -> bool {
        matches!(
            self,
            AlertKind::LowBattery
                | AlertKind::SignalLost
                | AlertKind::LeftGeofence
                | AlertKind::MissedStart
                | AlertKind::SafetyNet
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The plan's steps are firing (or, after the last, repeating to every leader).
    Escalating,
    /// A leader has taken ownership; further steps wait unless it is not resolved in time.
    Acknowledged,
    Resolved,
    /// The worker checked in or ended while overdue: everyone alerted has been told.
    StoodDown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertResolution {
    WorkerSafe,
    FalseAlarm,
    Incident,
    PoliceCalled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub id: Uuid,
    pub recipient_id: Option<Uuid>,
    pub recipient_name: String,
    /// `push`, `email` or `sms`; `rota` for a step that found nobody on call.
    pub channel: String,
    /// `pending`, `sending`, `sent`, `gone` (the endpoint no longer exists), `failed`, `no_channel`
    /// (the recipient has no working device or address on any of the step's channels), or
    /// `nobody_on_call` (the step named the on-call leader and nobody was on call: the next step fired).
    pub status: String,
    pub purpose: String,
    pub step: Option<i64>,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub history: Vec<DeliveryAttemptView>,
}

/// One try at delivering a message and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryAttemptView {
    pub attempt: i64,
    pub at: DateTime<Utc>,
    /// `sent`, `retry`, `gone` or `failed`.
    pub outcome: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertView {
    pub id: Uuid,
    pub session_id: Uuid,
    pub worker_id: Uuid,
    pub worker_name: String,
    /// The worker's phone number, for a one-tap call; shown to the school's leaders, DSL and admins
    /// (and the worker), and only when one is held.
    #[serde(default)]
    pub worker_phone: Option<String>,
    pub kind: AlertKind,
    pub status: AlertStatus,
    /// How many of the plan's steps have fired.
    pub steps_fired: i64,
    pub steps_total: i64,
    /// The instruction of the latest step that fired.
    pub instruction: Option<String>,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_by: Option<Uuid>,
    /// Who owns it, by name, so the others see who has it.
    #[serde(default)]
    pub acknowledged_by_name: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<AlertResolution>,
    pub resolution_notes: Option<String>,
    pub stood_down_at: Option<DateTime<Utc>>,
    pub last_location: Option<Coordinates>,
    /// The visit, with household notes: responders see them once an alert exists.
    pub session: SessionView,
    pub deliveries: Vec<DeliveryView>,
    /// Delivery in words, e.g. "sent to 2 of Priya Okafor's devices at 14:05:03; one endpoint gone".
    pub delivery_summary: Vec<String>,
    /// Messages between the responders and the worker about this alert, oldest first.
    #[serde(default)]
    pub messages: Vec<AlertMessage>,
    /// Where the phone has been during the visit: its latest positions, newest first (at most 50).
    #[serde(default)]
    pub trail: Vec<TrailPoint>,
}

/// One position from the phone during the visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrailPoint {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: f64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolveAlertRequest {
    pub resolution: AlertResolution,
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VapidPublicKey {
    /// The application server key for `PushManager.subscribe` (base64url, uncompressed P-256 point).
    pub public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushSubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

/// A browser's push subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushSubscriptionRequest {
    pub endpoint: String,
    pub keys: PushSubscriptionKeys,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnsubscribeRequest {
    pub endpoint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushSubscriptionView {
    pub id: Uuid,
    pub endpoint: String,
    pub created_at: DateTime<Utc>,
}

/// What each of the caller's devices' push services said to a test notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestPushReport {
    pub devices: Vec<TestPushResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestPushResult {
    pub endpoint: String,
    /// Accepted by the push service: the notification is on its way to the device.
    pub delivered: bool,
    /// What came of it, in words: the kind of answer and its HTTP status, never the service's own text.
    pub detail: String,
}

/// What a push notification carries: enough to show and open the alert, never a child's address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushPayload {
    pub alert_id: Uuid,
    pub kind: AlertKind,
    /// `step`, `repeat`, `stand_down` or `resolved`.
    pub purpose: String,
    pub step: Option<i64>,
    pub title: String,
    pub body: String,
    /// Where the app opens when the notification is tapped.
    pub url: String,
}

/// Will this visit's plan reach someone at every step? Checked before the visit starts, at the times
/// its steps could fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SafetyNetReport {
    pub session_id: Uuid,
    /// Every step reaches at least one person through a working channel (or, naming only the on-call
    /// leader out of the rota's hours, moves on to a step that does).
    pub ok: bool,
    pub checked_at: DateTime<Utc>,
    pub steps: Vec<StepReach>,
    /// What is wrong, in words, one line per problem.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepReach {
    /// 1-based, as people count steps.
    pub step: i64,
    /// The earliest moment this step could fire: the first deadline plus the step's delay.
    pub fires_at: DateTime<Utc>,
    /// Who the step would reach, and how.
    pub reaches: Vec<PersonReach>,
    /// The step names only the on-call leader and nobody is on call then: it would move straight on.
    pub falls_through: bool,
    pub problem: Option<String>,
}

/// One person and the channels that would carry a message to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonReach {
    pub user_id: Uuid,
    pub name: String,
    /// The working channels, in the order they would be tried: `push`, `email`, `sms`.
    pub channels: Vec<String>,
}

/// Can each leader be reached at all? The daily check, also on request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReachabilityReport {
    pub checked_at: DateTime<Utc>,
    pub people: Vec<Reachability>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reachability {
    pub user_id: Uuid,
    pub name: String,
    pub roles: Vec<Role>,
    pub push_devices: i64,
    /// E-mail is configured on this server (every user has an address).
    pub email: bool,
    /// SMS is configured on this server and the person has a phone number.
    pub sms: bool,
    pub reachable: bool,
}

/// Send me a test message on one channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestMessageRequest {
    pub channel: crate::escalation::Channel,
}

// ---------------------------------------------------------------------------------------------------
// Leaders, the DSL and admins: the live board, messages to the worker, the review queue, the monthly
// figures, the signal-loss map.

/// The last position a phone sent during a visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardPosition {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: f64,
    pub at: DateTime<Utc>,
    /// How old the position was when the board was made.
    pub age_seconds: i64,
}

/// The open alert of a visit on the board, and who owns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardAlert {
    pub id: Uuid,
    pub kind: AlertKind,
    pub status: AlertStatus,
    pub owner_id: Option<Uuid>,
    pub owner_name: Option<String>,
}

/// One live visit on the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardEntry {
    pub session_id: Uuid,
    pub worker_id: Uuid,
    pub worker_name: String,
    pub kind: String,
    pub sub_kind: Option<String>,
    pub address: String,
    /// `active`, `overdue` or `alarm`.
    pub status: SessionStatus,
    pub alarm: Option<AlarmKind>,
    pub deadline: Option<DateTime<Utc>>,
    /// Seconds from the board's time to the deadline; negative once it has passed.
    pub seconds_to_deadline: Option<i64>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_position: Option<BoardPosition>,
    pub battery_percent: Option<i64>,
    /// The visit's open alerts, most urgent first.
    pub alerts: Vec<BoardAlert>,
}

/// Every live visit of the school, alarms first, then overdue, then by deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardView {
    pub generated_at: DateTime<Utc>,
    /// Map tiles for the board's map: `{z}`, `{x}` and `{y}` are replaced.
    pub map_tile_url: String,
    pub sessions: Vec<BoardEntry>,
}

/// Who wrote a message about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageDirection {
    /// A leader to the worker ("Are you OK?").
    ToWorker,
    /// The worker's answer.
    FromWorker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertMessage {
    pub id: Uuid,
    pub alert_id: Uuid,
    pub session_id: Uuid,
    pub direction: MessageDirection,
    pub sender_id: Uuid,
    pub sender_name: String,
    pub text: String,
    pub sent_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendMessageRequest {
    /// 1 to 500 characters.
    pub text: String,
}

/// How long the server keeps a client's idle connection open. Phones report every few seconds to a
/// minute, so one connection carries a visit's reports; clients let theirs go sooner (the `client`
/// module), since a request sent just as the server closes the connection fails.
pub const SERVER_KEEP_ALIVE_SECS: u64 = 75;

/// The answers offered to the worker in one tap.
pub const QUICK_REPLIES: [&str; 3] = ["I'm OK", "Call me", "I need help now"];

/// Why something is in the DSL's review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewKind {
    /// The worker recorded a safeguarding concern in the visit's outcome.
    Concern,
    /// An alert resolved as an incident or a police call.
    Incident,
    /// An alarm (missed deadline, panic, duress) resolved otherwise.
    ResolvedAlarm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewItem {
    /// The session (a concern) or the alert (an incident or a resolved alarm): what a review is recorded
    /// against.
    pub subject_id: Uuid,
    pub kind: ReviewKind,
    pub session_id: Uuid,
    pub worker_name: String,
    pub session_kind: String,
    pub pupil_reference: Option<String>,
    /// When it happened: the visit's end, or the alert's resolution.
    pub occurred_at: DateTime<Utc>,
    /// What happened, in words.
    pub summary: String,
    pub notes: String,
    pub reviewed_by: Option<Uuid>,
    pub reviewed_by_name: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub action_taken: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarkReviewedRequest {
    /// What the DSL did about it: 1 to 2000 characters.
    pub action_taken: String,
}

/// A count under a name (a session kind, an alert kind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamedCount {
    pub name: String,
    pub count: i64,
}

/// How long something took, over the month's alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DurationFigures {
    /// How many alerts the figures are over.
    pub count: i64,
    pub median_seconds: Option<i64>,
    pub p95_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthlyFigures {
    /// `YYYY-MM`; months run in UTC.
    pub month: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Sessions planned to start in the month, by kind.
    pub sessions_by_kind: Vec<NamedCount>,
    pub sessions_total: i64,
    /// Alerts raised in the month, by kind.
    pub alerts_by_kind: Vec<NamedCount>,
    pub alerts_total: i64,
    pub false_alarms: i64,
    pub incidents: i64,
    /// From an alert being raised to a leader taking ownership.
    pub time_to_ownership: DurationFigures,
    /// From an alert being raised to its resolution.
    pub time_to_resolve: DurationFigures,
    /// Check-ins that arrived after their deadline had passed.
    pub late_check_ins: i64,
}

/// One cell of the signal-loss map: where phones lost signal more than once, or staff said so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignalCell {
    /// The cell's centre.
    pub latitude: f64,
    pub longitude: f64,
    /// Pings stopped here (the last fix before a gap).
    pub gaps: i64,
    /// Staff marked "no signal here".
    pub marks: i64,
    /// Different visits with a gap here.
    pub sessions: i64,
    pub last_at: DateTime<Utc>,
    /// Two or more gaps or marks: an area to warn staff about.
    pub repeated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignalMap {
    pub cell_size_m: i64,
    /// A gap is this long or longer without a ping during a live visit.
    pub gap_seconds: i64,
    pub since: DateTime<Utc>,
    /// Most gaps and marks first.
    pub cells: Vec<SignalCell>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestMessageReport {
    pub channel: crate::escalation::Channel,
    /// One result per destination: each browser for push, the address for e-mail, the number for SMS.
    pub results: Vec<TestPushResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoSignalMarkRequest {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoSignalMark {
    pub id: Uuid,
    pub latitude: f64,
    pub longitude: f64,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

/// Whether the caller can be reached by push: a leader with no device is told on every screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushStatus {
    pub devices: i64,
    /// The caller receives alerts (a leader or the DSL) and has no device subscribed.
    pub needs_subscription: bool,
    pub message: Option<String>,
}

/// An admin's change to a user: roles, line manager, active. Missing fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateUserRequest {
    pub roles: Option<Vec<Role>>,
    /// `null` or absent keeps the line manager; see `clear_line_manager`.
    pub line_manager_id: Option<Uuid>,
    #[serde(default)]
    pub clear_line_manager: bool,
    pub active: Option<bool>,
}

/// How long location pings are kept after a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetentionSettings {
    /// 1 to 3650 days.
    pub location_retention_days: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Concern;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// Any JSON value, nested a few levels, with the keys an event uses among the random ones.
    fn any_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof!["id|at|type|location|minutes|pin|outcome|events|latitude|longitude", "\\PC{0,6}"];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,20}".prop_map(Value::from),
            "start|check_in|extend|end|end_with_pin|panic|outcome|teleport".prop_map(Value::from),
            any::<u128>().prop_map(|n| Value::from(Uuid::from_u128(n).to_string())),
            (-400_000i64..400_000)
                .prop_map(|days| json!((chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(days)).to_rfc3339())),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn any_event() -> impl Strategy<Value = ClientEvent> {
        let location = proptest::option::of((-90.0f64..=90.0, -180.0f64..=180.0))
            .prop_map(|l| l.map(|(latitude, longitude)| Coordinates { latitude, longitude }));
        let outcome = (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), "\\PC{0,30}").prop_map(
            |(child_seen, responsible_adult_present, entered_premises, concern, notes)| Outcome {
                child_seen,
                responsible_adult_present,
                entered_premises,
                concern: if concern { Concern::Safeguarding } else { Concern::None },
                notes,
            },
        );
        let kind = prop_oneof![
            location.clone().prop_map(|location| ClientEventKind::Start { location }),
            Just(ClientEventKind::CheckIn),
            any::<i64>().prop_map(|minutes| ClientEventKind::Extend { minutes }),
            Just(ClientEventKind::End),
            "\\PC{0,10}".prop_map(|pin| ClientEventKind::EndWithPin { pin }),
            location.prop_map(|location| ClientEventKind::Panic { location }),
            outcome.prop_map(|outcome| ClientEventKind::Outcome { outcome }),
        ];
        (any::<u128>(), -10_000_000_000_000i64..10_000_000_000_000, kind).prop_map(|(id, ms, kind)| ClientEvent {
            id: Uuid::from_u128(id),
            at: chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default(),
            kind,
        })
    }

    proptest! {
        /// Whatever a phone (or anyone) sends, reading it as an event batch answers Ok or an error.
        #[test]
        fn any_json_reads_as_an_event_batch_or_an_error(value in any_json()) {
            let text = value.to_string();
            let _ = serde_json::from_str::<EventBatch>(&text);
            let _ = serde_json::from_value::<ClientEvent>(value.clone());
            let as_event = serde_json::from_value::<ClientEvent>(json!({
                "id": Uuid::nil(), "at": "2026-01-01T00:00:00Z", "type": "extend", "minutes": value.clone()
            }));
            // An extension's minutes are read exactly when they are a whole number that fits.
            match as_event {
                Ok(ClientEvent { kind: ClientEventKind::Extend { minutes }, .. }) => prop_assert_eq!(Some(minutes), value.as_i64()),
                Ok(other) => prop_assert!(false, "read as {:?}", other),
                Err(_) => prop_assert!(value.as_i64().is_none()),
            }
        }

        #[test]
        fn any_event_round_trips_through_json(event in any_event()) {
            let text = serde_json::to_string(&event).unwrap();
            prop_assert_eq!(serde_json::from_str::<ClientEvent>(&text).unwrap(), event);
        }

        #[test]
        fn unknown_event_types_are_named(kind in "[a-z_]{1,20}") {
            prop_assume!(!["start", "check_in", "extend", "end", "end_with_pin", "panic", "outcome"].contains(&kind.as_str()));
            let e = serde_json::from_value::<ClientEvent>(json!({"id": Uuid::nil(), "at": "2026-01-01T00:00:00Z", "type": kind}))
                .unwrap_err();
            prop_assert!(e.to_string().contains("`type`"), "{}", e);
        }
    }

    #[test]
    fn a_kind_without_its_field_names_it() {
        for (kind, field) in [("extend", "minutes"), ("end_with_pin", "pin"), ("outcome", "outcome")] {
            let e = serde_json::from_value::<ClientEvent>(
                json!({"id": Uuid::nil(), "at": "2026-01-01T00:00:00Z", "type": kind}),
            )
            .unwrap_err();
            assert!(e.to_string().contains(&format!("`{field}`")), "{kind}: {e}");
        }
        let e = serde_json::from_value::<ClientEvent>(
            json!({"id": Uuid::nil(), "at": "2026-01-01T00:00:00Z", "type": "check_in", "colour": "red"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }

    proptest! {
        /// A ping taken later has an id that sorts later, as the server stores it (hyphenated text), so
        /// its row is added at the end of the index on ping ids; two pings of the same instant differ.
        #[test]
        fn ping_ids_follow_the_time_the_pings_were_taken(
            first in 0i64..4_000_000_000_000,
            gap in 1i64..1_000_000,
        ) {
            let earlier = chrono::DateTime::from_timestamp_millis(first).unwrap();
            let later = earlier + chrono::Duration::milliseconds(gap);
            let (a, b, again) =
                (LocationPing::new_id(earlier), LocationPing::new_id(later), LocationPing::new_id(earlier));
            prop_assert_eq!(a.get_version_num(), 7);
            prop_assert!(a.to_string() < b.to_string(), "{} then {}", a, b);
            prop_assert_ne!(a, again);
            let (seconds, nanos) = a.get_timestamp().unwrap().to_unix();
            prop_assert_eq!(seconds as i64 * 1000 + i64::from(nanos / 1_000_000), first);
        }
    }
}
