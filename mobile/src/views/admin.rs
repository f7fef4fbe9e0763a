use dioxus::prelude::*;
use homeward_shared::api::{
    ApprovalRules, CreateUserRequest, EscalationPlanRequest, EscalationPlanView, ImportErrors, UpdateUserRequest,
    UserView,
};
use homeward_shared::escalation::Channel;
use homeward_shared::{EscalationPlan, EscalationStep, Recipient, RiskLevel, Role};
use uuid::Uuid;

use super::{Loading, Problem};
use crate::state::use_app;
use crate::sync::note_result;

pub const ROLES: [(Role, &str); 4] =
    [(Role::Staff, "staff"), (Role::Leader, "leader"), (Role::Dsl, "dsl"), (Role::Admin, "admin")];

/// The staff list as the admin sees it: each person with their roles and line manager by name.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffRow {
    pub user: UserView,
    pub roles: String,
    pub manager: String,
}

pub fn staff_rows(users: &[UserView]) -> Vec<StaffRow> {
    users
        .iter()
        .map(|u| StaffRow {
            user: u.clone(),
            roles: u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
            manager: match u.line_manager_id {
                Some(id) => users.iter().find(|m| m.id == id).map_or("(unknown)".into(), |m| m.name.clone()),
                None => "none".into(),
            },
        })
        .collect()
}

/// One step of a plan as the editor holds it: text fields until saved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepForm {
    pub delay_minutes: String,
    pub worker: bool,
    pub line_manager: bool,
    pub leaders: bool,
    pub dsl: bool,
    pub instruction: String,
}

impl StepForm {
    fn from_step(step: &EscalationStep) -> Self {
        let has = |r: &Recipient| step.recipients.contains(r);
        Self {
            delay_minutes: format!("{}", step.delay_seconds as f64 / 60.0),
            worker: has(&Recipient::Worker),
            line_manager: has(&Recipient::LineManager),
            leaders: has(&Recipient::Role { role: Role::Leader }),
            dsl: has(&Recipient::Role { role: Role::Dsl }),
            instruction: step.instruction.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanForm {
    pub id: Option<Uuid>,
    pub name: String,
    pub repeat_minutes: String,
    pub is_default: bool,
    pub steps: Vec<StepForm>,
}

impl PlanForm {
    pub fn from_view(plan: &EscalationPlanView) -> Self {
        Self {
            id: Some(plan.id),
            name: plan.name.clone(),
            repeat_minutes: format!("{}", plan.repeat_every_seconds as f64 / 60.0),
            is_default: plan.is_default,
            steps: plan.steps.iter().map(StepForm::from_step).collect(),
        }
    }

    /// The request, checked by the same rules as the server: an error names the step and field.
    pub fn validate(&self) -> Result<EscalationPlanRequest, String> {
        let minutes = |what: &str, raw: &str| -> Result<i64, String> {
            let value: f64 = raw.trim().parse().map_err(|_| format!("{what}: write a number of minutes"))?;
            if !value.is_finite() || value < 0.0 {
                return Err(format!("{what}: minutes cannot be negative"));
            }
            Ok((value * 60.0).round() as i64)
        };
        let mut steps = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            let n = i + 1;
            let mut recipients = Vec::new();
            if s.worker {
                recipients.push(Recipient::Worker);
            }
            if s.line_manager {
                recipients.push(Recipient::LineManager);
            }
            if s.leaders {
                recipients.push(Recipient::Role { role: Role::Leader });
            }
            if s.dsl {
                recipients.push(Recipient::Role { role: Role::Dsl });
            }
            if recipients.is_empty() {
                return Err(format!("Step {n}: choose who is told"));
            }
            steps.push(EscalationStep {
                delay_seconds: minutes(&format!("Step {n} delay"), &s.delay_minutes)?,
                recipients,
                channels: vec![Channel::Push],
                instruction: s.instruction.trim().to_string(),
            });
        }
        let repeat = minutes("Repeat", &self.repeat_minutes)?;
        let plan =
            EscalationPlan::parse(&self.name, steps, repeat).map_err(|e| format!("{}: {}", e.field, e.message))?;
        Ok(EscalationPlanRequest {
            name: plan.name,
            steps: plan.steps,
            repeat_every_seconds: Some(plan.repeat_every_seconds),
            is_default: self.is_default,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AdminAction {
    AddUser(CreateUserRequest),
    SetActive(Uuid, bool),
    Import(String),
    SavePlan(PlanForm),
    SaveRules(ApprovalRules),
    SaveRetention(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdminData {
    pub users: Option<Result<Vec<UserView>, String>>,
    pub plans: Option<Result<Vec<EscalationPlanView>, String>>,
    pub rules: Option<Result<ApprovalRules, String>>,
    pub retention: Option<Result<i64, String>>,
}

/// What the last action came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(String),
    Failed(String),
    ImportRefused(ImportErrors),
}

/// Staff, roles and line managers; adding, deactivating and importing people; escalation plans; the
/// school's approval rules and retention period.
#[component]
pub fn Admin() -> Element {
    let mut state = use_app();
    let mut data = use_signal(AdminData::default);
    let mut outcome = use_signal(|| None::<Outcome>);
    let mut reload = use_signal(|| 0u32);
    use_resource(move || async move {
        let _ = reload();
        let api = state.api();
        let users = api.colleagues().await;
        note_result(&mut state, &users);
        let plans = api.escalation_plans().await;
        let rules = api.approval_rules().await;
        let retention = api.retention().await;
        data.set(AdminData {
            users: Some(users.map_err(|e| e.message())),
            plans: Some(plans.map_err(|e| e.message())),
            rules: Some(rules.map_err(|e| e.message())),
            retention: Some(retention.map_err(|e| e.message())),
        });
    });
    let on_action = move |action: AdminAction| {
        spawn(async move {
            let api = state.api();
            let result: Result<Outcome, String> = match action {
                AdminAction::AddUser(request) => {
                    api.create_user(&request).await.map(|u| Outcome::Done(format!("Added {}", u.name)))
                }
                AdminAction::SetActive(id, active) => {
                    api.update_user(id, &UpdateUserRequest { active: Some(active), ..Default::default() }).await.map(
                        |u| Outcome::Done(format!("{} {}", u.name, if active { "reactivated" } else { "deactivated" })),
                    )
                }
                AdminAction::Import(csv) => api.import_staff(&csv).await.map(|r| match r {
                    Ok(report) => Outcome::Done(format!("Imported {} people", report.imported)),
                    Err(rows) => Outcome::ImportRefused(rows),
                }),
                AdminAction::SavePlan(form) => match form.validate() {
                    Err(problem) => Ok(Outcome::Failed(problem)),
                    Ok(request) => api
                        .save_plan(form.id, &request)
                        .await
                        .map(|p| Outcome::Done(format!("Saved the plan {}", p.name))),
                },
                AdminAction::SaveRules(rules) => {
                    api.set_approval_rules(&rules).await.map(|_| Outcome::Done("Saved the approval rules".into()))
                }
                AdminAction::SaveRetention(raw) => match raw.trim().parse::<i64>() {
                    Err(_) => Ok(Outcome::Failed("Retention: write a whole number of days".into())),
                    Ok(days) => {
                        api.set_retention(days).await.map(|d| Outcome::Done(format!("Location is kept for {d} days")))
                    }
                },
            }
            .map_err(|e| e.message());
            match result {
                Ok(o) => {
                    outcome.set(Some(o));
                    reload += 1;
                }
                Err(e) => outcome.set(Some(Outcome::Failed(e))),
            }
        });
    };
    rsx! {
        AdminScreen { data: data(), outcome: outcome(), on_action }
    }
}

#[component]
pub fn AdminScreen(data: AdminData, outcome: Option<Outcome>, on_action: EventHandler<AdminAction>) -> Element {
    rsx! {
        main { class: "screen admin", "data-testid": "admin",
            h1 { "Admin" }
            match outcome {
                Some(Outcome::Done(words)) => rsx! { p { class: "banner ok", role: "status", "data-testid": "admin-done", "{words}" } },
                Some(Outcome::Failed(words)) => rsx! { p { class: "banner bad", role: "alert", "data-testid": "admin-error", "{words}" } },
                Some(Outcome::ImportRefused(errors)) => rsx! {
                    div { class: "banner bad", role: "alert", "data-testid": "import-errors",
                        p { "{errors.message}" }
                        ul {
                            for row in errors.rows.iter() {
                                li { "data-testid": "import-row-error", "Line {row.line}: {row.message}" }
                            }
                        }
                    }
                },
                None => rsx! {},
            }
            match data.users {
                None => rsx! { Loading { text: "Loading staff…" } },
                Some(Err(e)) => rsx! { Problem { text: format!("Could not load staff: {e}") } },
                Some(Ok(users)) => rsx! { StaffList { users, on_action } },
            }
            AddUser { on_action }
            ImportStaff { on_action }
            match data.plans {
                None => rsx! {},
                Some(Err(e)) => rsx! { Problem { text: format!("Could not load the escalation plans: {e}") } },
                Some(Ok(plans)) => rsx! {
                    section { class: "panel", "data-testid": "plans",
                        h2 { "Escalation plans" }
                        for plan in plans {
                            PlanEditor { key: "{plan.id}", form: PlanForm::from_view(&plan), on_action }
                        }
                    }
                },
            }
            match data.rules {
                Some(Ok(rules)) => rsx! { RulesEditor { rules, on_action } },
                Some(Err(e)) => rsx! { Problem { text: format!("Could not load the approval rules: {e}") } },
                None => rsx! {},
            }
            match data.retention {
                Some(Ok(days)) => rsx! { RetentionEditor { days, on_action } },
                Some(Err(e)) => rsx! { Problem { text: format!("Could not load the retention period: {e}") } },
                None => rsx! {},
            }
        }
    }
}

#[component]
fn StaffList(users: Vec<UserView>, on_action: EventHandler<AdminAction>) -> Element {
    rsx! {
        section { class: "panel", "data-testid": "staff",
            h2 { "Staff" }
            table { class: "risk-table",
                thead { tr { th { "Name" } th { "Roles" } th { "Line manager" } th { "" } } }
                tbody {
                    for row in staff_rows(&users) {
                        tr { key: "{row.user.id}", "data-testid": "staff-row", "data-email": "{row.user.email}", "data-active": "{row.user.active}",
                            td { "{row.user.name}" br {} span { class: "field-hint", "{row.user.email}" } }
                            td { "{row.roles}" }
                            td { "{row.manager}" }
                            td {
                                if row.user.active {
                                    button { class: "button small", "data-testid": "deactivate",
                                        onclick: { let id = row.user.id; move |_| on_action.call(AdminAction::SetActive(id, false)) },
                                        "Deactivate"
                                    }
                                } else {
                                    span { "Deactivated " }
                                    button { class: "button small", "data-testid": "reactivate",
                                        onclick: { let id = row.user.id; move |_| on_action.call(AdminAction::SetActive(id, true)) },
                                        "Reactivate"
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[component]
fn AddUser(on_action: EventHandler<AdminAction>) -> Element {
    let mut email = use_signal(String::new);
    let mut name = use_signal(String::new);
    let mut password = use_signal(String::new);
    let mut roles = use_signal(|| vec![Role::Staff]);
    rsx! {
        section { class: "panel", "data-testid": "add-user",
            h2 { "Add a person" }
            div { class: "field", label { r#for: "new-name", "Name" }
                input { id: "new-name", name: "new_name", value: "{name}", oninput: move |e| name.set(e.value()) } }
            div { class: "field", label { r#for: "new-email", "E-mail" }
                input { id: "new-email", name: "new_email", r#type: "email", value: "{email}", oninput: move |e| email.set(e.value()) } }
            div { class: "field", label { r#for: "new-password", "First password" }
                input { id: "new-password", name: "new_password", r#type: "password", value: "{password}", oninput: move |e| password.set(e.value()) } }
            fieldset { legend { "Roles" }
                for (role, key) in ROLES {
                    label { class: "check",
                        input { r#type: "checkbox", name: "new_role_{key}", checked: roles().contains(&role),
                            onchange: move |e| {
                                let mut list = roles();
                                list.retain(|r| *r != role);
                                if e.checked() { list.push(role); }
                                roles.set(list);
                            }
                        }
                        " {key}"
                    }
                }
            }
            button { class: "button primary", "data-testid": "add-user-submit",
                onclick: move |_| on_action.call(AdminAction::AddUser(CreateUserRequest {
                    email: email(), name: name(), password: password(), roles: roles(), line_manager_id: None, phone: None,
                })),
                "Add"
            }
        }
    }
}

#[component]
fn ImportStaff(on_action: EventHandler<AdminAction>) -> Element {
    let mut csv = use_signal(String::new);
    rsx! {
        section { class: "panel", "data-testid": "import",
            h2 { "Import staff from CSV" }
            p { class: "field-hint", "Columns: email,name,roles,line_manager_email,password (roles separated by ;). Nothing is imported unless every row is right." }
            textarea { name: "import_csv", value: "{csv}", oninput: move |e| csv.set(e.value()) }
            button { class: "button", "data-testid": "import-submit", disabled: csv().trim().is_empty(),
                onclick: move |_| on_action.call(AdminAction::Import(csv())), "Import" }
        }
    }
}

#[component]
fn PlanEditor(form: PlanForm, on_action: EventHandler<AdminAction>) -> Element {
    let mut plan = use_signal(|| form.clone());
    let problem = plan.read().validate().err();
    rsx! {
        article { class: "card", "data-testid": "plan-editor",
            div { class: "field", label { "Plan name" }
                input { name: "plan_name", value: "{plan.read().name}", oninput: move |e| plan.write().name = e.value() } }
            for (i, step) in plan.read().steps.iter().cloned().enumerate() {
                fieldset { key: "{i}", "data-testid": "plan-step",
                    legend { "Step {i + 1}" }
                    div { class: "field", label { "Minutes after the deadline" }
                        input { name: "step_delay", inputmode: "decimal", value: "{step.delay_minutes}",
                            oninput: move |e| plan.write().steps[i].delay_minutes = e.value() } }
                    label { class: "check", input { r#type: "checkbox", checked: step.worker, onchange: move |e| plan.write().steps[i].worker = e.checked() } " The worker" }
                    label { class: "check", input { r#type: "checkbox", checked: step.line_manager, onchange: move |e| plan.write().steps[i].line_manager = e.checked() } " Their line manager" }
                    label { class: "check", input { r#type: "checkbox", checked: step.leaders, onchange: move |e| plan.write().steps[i].leaders = e.checked() } " Every leader" }
                    label { class: "check", input { r#type: "checkbox", checked: step.dsl, onchange: move |e| plan.write().steps[i].dsl = e.checked() } " The DSL" }
                    div { class: "field", label { "Instruction" }
                        input { name: "step_instruction", value: "{step.instruction}", oninput: move |e| plan.write().steps[i].instruction = e.value() } }
                    button { class: "button small", onclick: move |_| { plan.write().steps.remove(i); }, "Remove this step" }
                }
            }
            button { class: "button small", "data-testid": "add-step",
                onclick: move |_| plan.write().steps.push(StepForm { delay_minutes: "0".into(), leaders: true, ..Default::default() }),
                "Add a step" }
            div { class: "field", label { "Then repeat to every leader every (minutes)" }
                input { name: "repeat_minutes", value: "{plan.read().repeat_minutes}", oninput: move |e| plan.write().repeat_minutes = e.value() } }
            if let Some(problem) = &problem {
                p { class: "field-error", "data-testid": "plan-error", "{problem}" }
            }
            button { class: "button primary", "data-testid": "save-plan", disabled: problem.is_some(),
                onclick: move |_| on_action.call(AdminAction::SavePlan(plan())), "Save the plan" }
        }
    }
}

#[component]
fn RulesEditor(rules: ApprovalRules, on_action: EventHandler<AdminAction>) -> Element {
    let mut form = use_signal(|| rules.clone());
    let from = form.read().approval_from_risk.map_or("never", |r| r.as_str());
    rsx! {
        section { class: "panel", "data-testid": "rules",
            h2 { "Approval rules" }
            label { class: "check", input { r#type: "checkbox", name: "safe_and_well_needs_approval", checked: form.read().safe_and_well_needs_approval,
                onchange: move |e| form.write().safe_and_well_needs_approval = e.checked() } " Safe-and-well visits need approval" }
            div { class: "field", label { r#for: "approval_from_risk", "Visits at or above this risk need approval" }
                select { id: "approval_from_risk", name: "approval_from_risk", value: "{from}",
                    onchange: move |e| form.write().approval_from_risk = RiskLevel::parse(&e.value()).ok(),
                    option { value: "low", selected: from == "low", "low" }
                    option { value: "medium", selected: from == "medium", "medium" }
                    option { value: "high", selected: from == "high", "high" }
                    option { value: "never", selected: from == "never", "never (risk alone)" }
                }
            }
            label { class: "check", input { r#type: "checkbox", name: "high_risk_needs_companion", checked: form.read().high_risk_needs_companion,
                onchange: move |e| form.write().high_risk_needs_companion = e.checked() } " High risk needs a companion" }
            button { class: "button primary", "data-testid": "save-rules", onclick: move |_| on_action.call(AdminAction::SaveRules(form())), "Save the rules" }
        }
    }
}

#[component]
fn RetentionEditor(days: i64, on_action: EventHandler<AdminAction>) -> Element {
    let mut value = use_signal(|| days.to_string());
    rsx! {
        section { class: "panel", "data-testid": "retention",
            h2 { "Location retention" }
            div { class: "field", label { r#for: "retention", "Keep visit locations for (days, 1 to 3650)" }
                input { id: "retention", name: "location_retention_days", inputmode: "numeric", value: "{value}", oninput: move |e| value.set(e.value()) } }
            p { class: "field-hint", "Locations of a visit whose alert is open or was an incident are kept regardless." }
            button { class: "button primary", "data-testid": "save-retention", onclick: move |_| on_action.call(AdminAction::SaveRetention(value())), "Save" }
        }
    }
}
