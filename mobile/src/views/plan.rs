use std::collections::BTreeMap;

use chrono::{Duration, Local, NaiveDateTime, TimeZone};
use dioxus::prelude::*;
use homeward_shared::api::PlanSessionRequest;
use homeward_shared::{
    CheckInInterval, Coordinates, FieldError, PupilReference, RiskAssessment, RiskFactor, RiskLevel, RiskRating,
    SessionKind, Timestamp, VisitDuration,
};
use uuid::Uuid;

use crate::Route;
use crate::components::{Field, NavLink};
use crate::state::{Action, Connection, use_app};
use crate::sync::note_result;

const ADDRESS_MAX: usize = 300;
const NOTES_MAX: usize = 2_000;

/// Field errors by key (`latitude`, `risk_overall`, ...), shown beside their fields.
pub type FieldErrors = BTreeMap<String, String>;

/// The form's name for a risk factor's select (`risk_<factor>`).
pub fn factor_key(factor: RiskFactor) -> &'static str {
    match factor {
        RiskFactor::EnvironmentAndLocation => "environment_and_location",
        RiskFactor::NatureOfTask => "nature_of_task",
        RiskFactor::IndividualsAndHistory => "individuals_and_history",
        RiskFactor::PreviousIncidents => "previous_incidents",
        RiskFactor::RiskOfAllegation => "risk_of_allegation",
        RiskFactor::Animals => "animals",
        RiskFactor::Other => "other",
    }
}

/// The plan form as typed: every field a string, checked only on submit.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanForm {
    pub kind: String,
    pub sub_kind: String,
    pub address: String,
    pub latitude: String,
    pub longitude: String,
    pub pupil_reference: String,
    pub household_notes: String,
    /// `YYYY-MM-DDTHH:MM`, local time, as `datetime-local` gives it.
    pub planned_start: String,
    pub expected_duration_minutes: String,
    pub check_in_interval_minutes: String,
    pub companion_id: String,
    /// Each factor's level, in [`RiskFactor::ALL`] order.
    pub risk: Vec<(RiskFactor, String)>,
    pub risk_overall: String,
}

pub fn local_input_value(at: Timestamp) -> String {
    at.with_timezone(&Local).format("%Y-%m-%dT%H:%M").to_string()
}

impl PlanForm {
    pub fn new(now: Timestamp) -> Self {
        Self {
            kind: "home_visit".into(),
            sub_kind: "education".into(),
            address: String::new(),
            latitude: String::new(),
            longitude: String::new(),
            pupil_reference: String::new(),
            household_notes: String::new(),
            planned_start: local_input_value(now),
            expected_duration_minutes: "60".into(),
            check_in_interval_minutes: String::new(),
            companion_id: String::new(),
            risk: RiskFactor::ALL.into_iter().map(|f| (f, "low".to_string())).collect(),
            risk_overall: "low".into(),
        }
    }

    /// Change one field by its form name.
    pub fn set(&mut self, name: &str, value: String) {
        match name {
            "kind" => self.kind = value,
            "sub_kind" => self.sub_kind = value,
            "address" => self.address = value,
            "latitude" => self.latitude = value,
            "longitude" => self.longitude = value,
            "pupil_reference" => self.pupil_reference = value,
            "household_notes" => self.household_notes = value,
            "planned_start" => self.planned_start = value,
            "expected_duration_minutes" => self.expected_duration_minutes = value,
            "check_in_interval_minutes" => self.check_in_interval_minutes = value,
            "companion_id" => self.companion_id = value,
            "risk_overall" => self.risk_overall = value,
            other => {
                if let Some(factor) = other.strip_prefix("risk_")
                    && let Some(entry) = self.risk.iter_mut().find(|(f, _)| factor_key(*f) == factor)
                {
                    entry.1 = value;
                }
            }
        }
    }

    /// The request, or every field's error, checked with the same parsers the server uses.
    pub fn validate(&self, now: Timestamp) -> Result<PlanSessionRequest, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut note = |e: FieldError| {
            errors.entry(form_key(e.field).to_string()).or_insert(e.message);
        };

        let is_home_visit = self.kind == "home_visit";
        let sub_kind = is_home_visit.then(|| self.sub_kind.clone());
        let kind = SessionKind::parse(&self.kind, sub_kind.as_deref()).map_err(&mut note).ok();

        let address = self.address.trim();
        if address.is_empty() {
            note(FieldError::new("address", "the address is required"));
        } else if address.chars().count() > ADDRESS_MAX {
            note(FieldError::new("address", format!("the address is at most {ADDRESS_MAX} characters")));
        }

        let location = match (self.latitude.trim(), self.longitude.trim()) {
            ("", "") => None,
            (lat, lon) => {
                let lat = number("latitude", lat).map_err(&mut note).ok();
                let lon = number("longitude", lon).map_err(&mut note).ok();
                match (lat, lon) {
                    (Some(lat), Some(lon)) => Coordinates::parse(lat, lon).map_err(&mut note).ok(),
                    _ => None,
                }
            }
        };

        let pupil = self.pupil_reference.trim();
        if !pupil.is_empty() {
            let _ = PupilReference::parse(pupil).map_err(&mut note);
        }
        if self.household_notes.chars().count() > NOTES_MAX {
            note(FieldError::new("household_notes", format!("household notes are at most {NOTES_MAX} characters")));
        }

        let planned_start = parse_local(&self.planned_start).map_err(&mut note).ok();
        if let Some(start) = planned_start
            && (start < now - Duration::days(1) || start > now + Duration::days(366))
        {
            note(FieldError::new("planned_start", "the planned start must be between yesterday and a year from now"));
        }

        let duration = whole_number("expected_duration_minutes", &self.expected_duration_minutes)
            .and_then(|m| VisitDuration::parse(m).map(|d| d.minutes()))
            .map_err(&mut note)
            .ok();
        let interval = match self.check_in_interval_minutes.trim() {
            "" => Some(None),
            text => whole_number("check_in_interval_minutes", text)
                .and_then(|m| CheckInInterval::parse(m).map(|i| Some(i.minutes())))
                .map_err(&mut note)
                .ok(),
        };

        let companion_id = match self.companion_id.trim() {
            "" => Some(None),
            text => Uuid::parse_str(text)
                .map(Some)
                .map_err(|_| FieldError::new("companion_id", "choose a companion from the list"))
                .map_err(&mut note)
                .ok(),
        };

        let factors: Vec<RiskRating> = self
            .risk
            .iter()
            .filter_map(|(factor, level)| {
                let level = RiskLevel::parse(level)
                    .map_err(|e| {
                        FieldError::new("risk_assessment.factors", format!("{}: {}", factor.label(), e.message))
                    })
                    .map_err(&mut note)
                    .ok()?;
                Some(RiskRating { factor: *factor, level, notes: String::new() })
            })
            .collect();
        let overall = RiskLevel::parse(&self.risk_overall)
            .map_err(|e| FieldError::new("risk_assessment.overall", e.message))
            .map_err(&mut note)
            .ok();
        let risk = match overall {
            Some(overall) if factors.len() == RiskFactor::ALL.len() => {
                RiskAssessment::parse(factors, overall).map_err(&mut note).ok()
            }
            _ => None,
        };

        match (kind, planned_start, duration, interval, companion_id, risk) {
            (Some(kind), Some(planned_start), Some(duration), Some(interval), Some(companion_id), Some(risk))
                if errors.is_empty() =>
            {
                Ok(PlanSessionRequest {
                    kind: kind.kind_str().into(),
                    sub_kind: kind.sub_kind_str().map(Into::into),
                    companion_id,
                    address: address.to_string(),
                    location,
                    geofence_radius_m: None,
                    pupil_reference: (!pupil.is_empty()).then(|| pupil.to_string()),
                    household_notes: self.household_notes.trim().to_string(),
                    planned_start,
                    expected_duration_minutes: duration,
                    check_in_interval_minutes: interval,
                    escalation_plan_id: None,
                    risk_assessment: risk,
                    submit_for_approval: true,
                })
            }
            _ => Err(errors),
        }
    }
}

/// The form's key for a field the parsers (or the server) name.
pub fn form_key(field: &str) -> &str {
    match field {
        "risk_assessment.overall" | "risk_assessment_overall" => "risk_overall",
        "risk_assessment.factors" | "risk_assessment_factors" | "risk_assessment" => "risk_factors",
        "location" => "latitude",
        other => other,
    }
}

const FORM_KEYS: [&str; 14] = [
    "kind",
    "sub_kind",
    "address",
    "latitude",
    "longitude",
    "pupil_reference",
    "household_notes",
    "planned_start",
    "expected_duration_minutes",
    "check_in_interval_minutes",
    "companion_id",
    "risk_overall",
    "risk_factors",
    "geofence_radius_m",
];

fn number(field: &'static str, text: &str) -> Result<f64, FieldError> {
    text.trim().replace(',', ".").parse::<f64>().map_err(|_| {
        if text.trim().is_empty() {
            FieldError::new(field, format!("enter the {field} too, or leave both empty"))
        } else {
            FieldError::new(field, format!("`{}` is not a number", text.trim()))
        }
    })
}

fn whole_number(field: &'static str, text: &str) -> Result<i64, FieldError> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| FieldError::new(field, format!("`{}` is not a whole number of minutes", text.trim())))
}

fn parse_local(text: &str) -> Result<Timestamp, FieldError> {
    let text = text.trim();
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| FieldError::new("planned_start", "enter the date and time the visit starts"))?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|local| local.with_timezone(&chrono::Utc))
        .ok_or_else(|| FieldError::new("planned_start", "that time does not exist here (the clocks change)"))
}

const STAFF_CANNOT_LIST: &str =
    "Your account cannot list colleagues. For a high-risk visit, ask a leader to plan it with your companion.";

/// Who could come along: only leaders, the DSL and admins can list colleagues.
#[derive(Debug, Clone, PartialEq)]
pub enum Companions {
    Loading,
    List(Vec<(Uuid, String)>),
    Unavailable(String),
}

/// Plan a visit, with its risk assessment; submitted for approval where the school's rules need it.
#[component]
pub fn Plan() -> Element {
    let mut state = use_app();
    let mut form = use_signal(|| PlanForm::new(chrono::Utc::now()));
    let mut errors = use_signal(FieldErrors::new);
    let mut server_error = use_signal(|| None::<String>);
    let mut busy = use_signal(|| false);
    let mut locating = use_signal(|| false);
    let mut location_note = use_signal(|| None::<String>);
    let companions = use_resource(move || async move {
        let my_id = state.auth.peek().as_ref().map(|a| a.user.id);
        match state.api().colleagues().await {
            Ok(users) => Companions::List(
                users
                    .into_iter()
                    .filter(|u| u.active && Some(u.id) != my_id)
                    .map(|u| (u.id, format!("{} ({})", u.name, u.email)))
                    .collect(),
            ),
            Err(e) if matches!(&e, crate::api::ApiError::Refused { status: 403, .. }) => {
                Companions::Unavailable(STAFF_CANNOT_LIST.into())
            }
            Err(e) => Companions::Unavailable(format!("Colleagues could not be loaded: {}", e.message())),
        }
    });

    let use_location = move |_| {
        if locating() {
            return;
        }
        locating.set(true);
        location_note.set(None);
        spawn(async move {
            match state.platform().location.current().await {
                Ok(fix) => {
                    let mut f = form.write();
                    f.latitude = format!("{:.6}", fix.coordinates.latitude);
                    f.longitude = format!("{:.6}", fix.coordinates.longitude);
                    location_note.set(Some(format!("Your location, to within {:.0} m.", fix.accuracy_m)));
                }
                Err(why) => {
                    location_note.set(Some(format!("{why}. Type the coordinates instead, or leave them empty.")))
                }
            }
            locating.set(false);
        });
    };

    let submit = move |_| {
        if busy() {
            return;
        }
        server_error.set(None);
        let request = match form.read().validate(chrono::Utc::now()) {
            Ok(request) => request,
            Err(found) => {
                errors.set(found);
                return;
            }
        };
        errors.set(FieldErrors::new());
        busy.set(true);
        spawn(async move {
            let result = state.api().plan(&request).await;
            note_result(&mut state, &result);
            busy.set(false);
            match result {
                Ok(view) => {
                    state.dispatch(Action::SessionUpdated(view));
                    navigator().push(Route::Today {});
                }
                Err(e) if e.is_offline() => server_error.set(Some(
                    "You are offline. A visit is planned with the server (it checks the school's rules), so plan it once you have a connection."
                        .into(),
                )),
                Err(e) => match e.field().map(form_key).filter(|k| FORM_KEYS.contains(k)) {
                    Some(key) => {
                        errors.write().insert(key.to_string(), e.field_message());
                    }
                    None => server_error.set(Some(e.message())),
                },
            }
        });
    };

    rsx! {
        PlanScreen {
            form: form(),
            errors: errors(),
            server_error: server_error(),
            busy: busy(),
            companions: companions.read().clone().unwrap_or(Companions::Loading),
            locating: locating(),
            location_note: location_note(),
            offline: *state.connection.read() == Connection::Offline,
            on_change: move |(name, value): (String, String)| {
                form.write().set(&name, value);
                errors.write().remove(form_key(&name));
            },
            on_use_location: use_location,
            on_submit: submit,
        }
    }
}

#[component]
pub fn PlanScreen(
    form: PlanForm,
    errors: FieldErrors,
    server_error: Option<String>,
    busy: bool,
    companions: Companions,
    locating: bool,
    location_note: Option<String>,
    offline: bool,
    on_change: EventHandler<(String, String)>,
    on_use_location: EventHandler<()>,
    on_submit: EventHandler<()>,
) -> Element {
    let error = |key: &str| errors.get(key).cloned();
    let change = move |name: &'static str| move |evt: FormEvent| on_change.call((name.to_string(), evt.value()));
    let levels = ["low", "medium", "high"];
    let kinds = [
        ("home_visit", "Home visit"),
        ("offsite_meeting", "Off-site meeting"),
        ("on_site_alone", "Alone on site"),
        ("travel", "Travel"),
    ];
    let sub_kinds = [
        ("safe_and_well", "Safe and well"),
        ("procedural", "Procedural"),
        ("education", "Education"),
        ("other", "Other"),
    ];
    let (companion_hint, companion_options) = match &companions {
        Companions::Loading => (Some("Loading colleagues…".to_string()), vec![]),
        Companions::List(list) => (None, list.clone()),
        Companions::Unavailable(why) => (Some(why.clone()), vec![]),
    };
    rsx! {
        main { class: "screen plan", "data-testid": "plan",
            h1 { "Plan a visit" }
            if offline {
                p { class: "banner warn", role: "status", "You are offline: a visit can be planned once you have a connection." }
            }
            form {
                class: "form",
                novalidate: true,
                onsubmit: move |evt: FormEvent| {
                    evt.prevent_default();
                    on_submit.call(());
                },
                Field { label: "Kind of visit", error_key: "kind", error: error("kind"),
                    select { name: "kind", onchange: change("kind"),
                        for (value, label) in kinds {
                            option { value, selected: form.kind == value, "{label}" }
                        }
                    }
                }
                Field {
                    label: "Home visit type",
                    error_key: "sub_kind",
                    error: error("sub_kind"),
                    hint: (form.kind != "home_visit").then(|| "Only for home visits.".to_string()),
                    select { name: "sub_kind", onchange: change("sub_kind"),
                        for (value, label) in sub_kinds {
                            option { value, selected: form.sub_kind == value, "{label}" }
                        }
                    }
                }
                Field { label: "Address", error_key: "address", error: error("address"),
                    input {
                        name: "address",
                        r#type: "text",
                        autocomplete: "off",
                        value: "{form.address}",
                        oninput: change("address"),
                    }
                }
                fieldset { class: "coordinates",
                    legend { "Visit point (optional)" }
                    button {
                        class: "button big",
                        r#type: "button",
                        "data-testid": "use-location",
                        disabled: locating,
                        onclick: move |_| on_use_location.call(()),
                        if locating {
                            "Finding your location…"
                        } else {
                            "Use my current location"
                        }
                    }
                    if let Some(note) = location_note {
                        p { class: "field-hint", "data-testid": "location-note", "{note}" }
                    }
                    Field { label: "Latitude", error_key: "latitude", error: error("latitude"),
                        input {
                            name: "latitude",
                            r#type: "text",
                            inputmode: "decimal",
                            value: "{form.latitude}",
                            oninput: change("latitude"),
                        }
                    }
                    Field { label: "Longitude", error_key: "longitude", error: error("longitude"),
                        input {
                            name: "longitude",
                            r#type: "text",
                            inputmode: "decimal",
                            value: "{form.longitude}",
                            oninput: change("longitude"),
                        }
                    }
                }
                Field {
                    label: "Pupil reference (optional)",
                    error_key: "pupil_reference",
                    error: error("pupil_reference"),
                    hint: "The school's reference, never the child's name.".to_string(),
                    input {
                        name: "pupil_reference",
                        r#type: "text",
                        autocomplete: "off",
                        value: "{form.pupil_reference}",
                        oninput: change("pupil_reference"),
                    }
                }
                Field {
                    label: "Household notes",
                    error_key: "household_notes",
                    error: error("household_notes"),
                    hint: "Who lives there, animals, known risks.".to_string(),
                    textarea {
                        name: "household_notes",
                        rows: "3",
                        value: "{form.household_notes}",
                        oninput: change("household_notes"),
                    }
                }
                Field { label: "Planned start", error_key: "planned_start", error: error("planned_start"),
                    input {
                        name: "planned_start",
                        r#type: "datetime-local",
                        value: "{form.planned_start}",
                        oninput: change("planned_start"),
                    }
                }
                Field {
                    label: "Expected duration (minutes)",
                    error_key: "expected_duration_minutes",
                    error: error("expected_duration_minutes"),
                    input {
                        name: "expected_duration_minutes",
                        r#type: "number",
                        inputmode: "numeric",
                        min: "5",
                        max: "720",
                        value: "{form.expected_duration_minutes}",
                        oninput: change("expected_duration_minutes"),
                    }
                }
                Field {
                    label: "Check in every (minutes, optional)",
                    error_key: "check_in_interval_minutes",
                    error: error("check_in_interval_minutes"),
                    input {
                        name: "check_in_interval_minutes",
                        r#type: "number",
                        inputmode: "numeric",
                        min: "5",
                        max: "240",
                        value: "{form.check_in_interval_minutes}",
                        oninput: change("check_in_interval_minutes"),
                    }
                }
                Field {
                    label: "Companion (optional)",
                    error_key: "companion_id",
                    error: error("companion_id"),
                    hint: companion_hint,
                    select { name: "companion_id", onchange: change("companion_id"),
                        option { value: "", selected: form.companion_id.is_empty(), "No companion" }
                        for (id, name) in companion_options {
                            option {
                                value: "{id}",
                                selected: form.companion_id == id.to_string(),
                                "{name}"
                            }
                        }
                    }
                }
                fieldset { class: "risk",
                    legend { "Risk assessment" }
                    for (factor, level) in form.risk.clone() {
                        Field {
                            key: "{factor_key(factor)}",
                            label: factor.label(),
                            error_key: "risk_{factor_key(factor)}",
                            error: error(&format!("risk_{}", factor_key(factor))),
                            select {
                                name: "risk_{factor_key(factor)}",
                                onchange: move |evt: FormEvent| {
                                    on_change.call((format!("risk_{}", factor_key(factor)), evt.value()))
                                },
                                for value in levels {
                                    option { value, selected: level == value, "{value}" }
                                }
                            }
                        }
                    }
                    if let Some(problem) = error("risk_factors") {
                        p { class: "field-error", role: "alert", "data-testid": "error-risk_factors", "{problem}" }
                    }
                    Field { label: "Overall risk", error_key: "risk_overall", error: error("risk_overall"),
                        select { name: "risk_overall", onchange: change("risk_overall"),
                            for value in levels {
                                option { value, selected: form.risk_overall == value, "{value}" }
                            }
                        }
                    }
                }
                if let Some(problem) = server_error {
                    p { class: "field-error", role: "alert", "data-testid": "plan-error", "{problem}" }
                } else if !errors.is_empty() {
                    p { class: "field-error", role: "alert", "Please correct the fields marked above." }
                }
                div { class: "actions",
                    button {
                        class: "button primary big",
                        r#type: "submit",
                        "data-testid": "submit-plan",
                        disabled: busy,
                        if busy {
                            "Planning…"
                        } else {
                            "Plan this visit"
                        }
                    }
                    NavLink { to: Route::Today {}, class: "button big", "Cancel" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
    }

    fn filled() -> PlanForm {
        let mut form = PlanForm::new(now());
        form.address = "12 Elm Road, Leeds".into();
        form
    }

    #[test]
    fn a_complete_form_becomes_the_request() {
        let mut form = filled();
        form.set("latitude", "53.8".into());
        form.set("longitude", "-1.55".into());
        form.set("pupil_reference", "ADM-2024/017".into());
        form.set("check_in_interval_minutes", "20".into());
        form.set("risk_animals", "medium".into());
        form.set("risk_overall", "medium".into());
        let request = form.validate(now()).unwrap();
        assert_eq!(request.kind, "home_visit");
        assert_eq!(request.sub_kind.as_deref(), Some("education"));
        assert_eq!(request.location.unwrap().latitude, 53.8);
        assert_eq!(request.check_in_interval_minutes, Some(20));
        assert_eq!(request.expected_duration_minutes, 60);
        assert_eq!(request.planned_start, now());
        assert_eq!(request.risk_assessment.overall, RiskLevel::Medium);
        let animals = request.risk_assessment.factors.iter().find(|r| r.factor == RiskFactor::Animals).unwrap();
        assert_eq!(animals.level, RiskLevel::Medium);
    }

    #[test]
    fn each_bad_field_gets_the_shared_parsers_message() {
        let mut form = PlanForm::new(now());
        form.set("latitude", "91".into());
        form.set("longitude", "0".into());
        form.set("pupil_reference", "Jamie Smith".into());
        form.set("expected_duration_minutes", "1000".into());
        form.set("check_in_interval_minutes", "2".into());
        form.set("risk_other", "high".into());
        let errors = form.validate(now()).unwrap_err();
        for key in ["address", "latitude", "pupil_reference", "expected_duration_minutes", "check_in_interval_minutes"]
        {
            assert!(errors.contains_key(key), "{key}: {errors:?}");
        }
        assert!(errors["latitude"].contains("between -90 and 90"));
        assert!(errors["expected_duration_minutes"].contains("720"));
        assert!(errors["risk_overall"].contains("cannot be lower"), "{errors:?}");
    }

    #[test]
    fn coordinates_are_optional_but_come_in_pairs() {
        assert_eq!(filled().validate(now()).unwrap().location, None);
        let mut form = filled();
        form.set("latitude", "53.8".into());
        assert!(form.validate(now()).unwrap_err()["longitude"].contains("leave both empty"));
        form.set("longitude", "east".into());
        assert!(form.validate(now()).unwrap_err()["longitude"].contains("not a number"));
    }

    #[test]
    fn sub_kind_only_counts_for_home_visits() {
        let mut form = filled();
        form.set("kind", "travel".into());
        let request = form.validate(now()).unwrap();
        assert_eq!((request.kind.as_str(), request.sub_kind), ("travel", None));
    }

    #[test]
    fn planned_start_must_be_a_time_near_now() {
        let mut form = filled();
        form.set("planned_start", "".into());
        assert!(form.validate(now()).unwrap_err().contains_key("planned_start"));
        form.set("planned_start", local_input_value(now() - Duration::days(3)));
        assert!(form.validate(now()).unwrap_err()["planned_start"].contains("yesterday"));
    }

    #[test]
    fn server_field_codes_map_to_form_keys() {
        assert_eq!(form_key("risk_assessment_overall"), "risk_overall");
        assert_eq!(form_key("companion_id"), "companion_id");
    }
}
