//! What admins and the DSL do through the API: users and the CSV import, escalation plans, the school's
//! approval rules, the audit log and its tamper evidence, and the OpenAPI document.

use std::collections::BTreeSet;

use chrono::Duration;
use homeward_shared::api::{
    ApprovalRules, AuditEntry, ClientEventKind, CreateUserRequest, EscalationPlanRequest, EscalationPlanView,
    ImportReport, UserView,
};
use homeward_shared::client::{ApiClient, ClientError, RawBody};
use homeward_shared::session::ApprovalStatus;
use homeward_shared::{EscalationPlan, EscalationStep, Recipient, RiskLevel, Role};
use homeward_tests::{
    Backend, PASSWORD, TestApp, event, low_risk_visit, on_both_databases, spawn_app, visit_with_risk,
};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

fn status(err: &ClientError) -> Option<u16> {
    err.status().map(|s| s.as_u16())
}

/// Send `body` as JSON and return the status with the answer.
async fn send(client: &ApiClient, method: Method, path: &str, body: &impl Serialize) -> (u16, Value) {
    let body = serde_json::to_value(body).expect("a JSON body");
    let (status, answer) = client.raw(method, path, Some(RawBody::Json(body))).await.expect("the server answers");
    (status.as_u16(), answer)
}

async fn scalar(app: &TestApp, sql: &str, bind: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(bind.to_string())
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    n
}

async fn users_with_email(app: &TestApp, email: &str) -> i64 {
    scalar(app, "select count(*) from users where email = $1", email).await
}

async fn audit_rows(app: &TestApp, school: Uuid) -> i64 {
    scalar(app, "select count(*) from audit_log where school_id = $1", &school.to_string()).await
}

/// The school's whole audit log, as the DSL reads it.
async fn audit_of(reader: &ApiClient) -> Vec<AuditEntry> {
    reader.audit(0, 1000).await.expect("read the audit log")
}

fn new_user(email: &str, roles: Vec<Role>, line_manager_id: Option<Uuid>) -> CreateUserRequest {
    CreateUserRequest {
        email: email.into(),
        name: "New Person".into(),
        password: PASSWORD.into(),
        roles,
        line_manager_id,
        phone: None,
    }
}

// ----------------------------------------------------------------------------------------------------
// Users.

async fn admins_create_users_with_line_managers(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Users School").await;
    let other = app.school("Other Users School").await;
    let admin = &school.admin.api;

    let request = new_user("New.Worker@School.Test", vec![Role::Staff], Some(school.leader.id()));
    let (code, body) = send(admin, Method::POST, "/api/v1/users", &request).await;
    assert_eq!(code, 201, "{body}");
    let created: UserView = serde_json::from_value(body).expect("a user");
    assert_eq!(created.email, "new.worker@school.test", "e-mail addresses are kept in lower case");
    assert_eq!(created.school_id, school.id);
    assert_eq!(created.roles, vec![Role::Staff]);
    assert_eq!(created.line_manager_id, Some(school.leader.id()));
    assert!(created.active);
    assert!(!created.has_pin);
    let listed = admin.users().await.expect("list users");
    assert_eq!(listed.iter().find(|u| u.id == created.id), Some(&created));
    // The new person can sign in with the password the admin set.
    let (_, login) = app.api.login("new.worker@school.test", PASSWORD).await.expect("the new user signs in");
    assert_eq!(login.user.id, created.id);

    // The same e-mail again, in any case, is a conflict; so is another school's e-mail.
    let err = admin.create_user(&new_user("NEW.WORKER@school.test", vec![Role::Staff], None)).await.unwrap_err();
    assert_eq!((status(&err), err.code()), (Some(409), Some("email_taken")), "{err}");
    let err = admin.create_user(&new_user(&other.staff.user.email, vec![Role::Staff], None)).await.unwrap_err();
    assert_eq!((status(&err), err.code()), (Some(409), Some("email_taken")), "{err}");
    assert_eq!(users_with_email(&app, "new.worker@school.test").await, 1);

    // A line manager from another school does not exist as far as this school can tell.
    let err = admin
        .create_user(&new_user("managed.elsewhere@school.test", vec![Role::Staff], Some(other.leader.id())))
        .await
        .unwrap_err();
    assert_eq!((status(&err), err.code()), (Some(422), Some("invalid_line_manager_id")), "{err}");
    assert_eq!(users_with_email(&app, "managed.elsewhere@school.test").await, 0);

    // Only admins add people.
    for (who, client) in [("staff", &school.staff.api), ("a leader", &school.leader.api), ("the DSL", &school.dsl.api)]
    {
        let err = client.create_user(&new_user("sneaky@school.test", vec![Role::Admin], None)).await.unwrap_err();
        assert_eq!((status(&err), err.code()), (Some(403), Some("forbidden")), "{who}: {err}");
    }
    assert_eq!(users_with_email(&app, "sneaky@school.test").await, 0);

    // The creation is audited, with the admin as the actor; the refusals are not.
    let audit = audit_of(&school.dsl.api).await;
    let created_entries: Vec<&AuditEntry> =
        audit.iter().filter(|e| e.action == "user.created" && e.actor_id.is_some()).collect();
    assert_eq!(created_entries.len(), 1, "{created_entries:?}");
    assert_eq!(created_entries[0].actor_id, Some(school.admin.id()));
    assert_eq!(created_entries[0].subject, format!("user:{}", created.id));
}

// ----------------------------------------------------------------------------------------------------
// CSV import.

const HEADER: &str = "email,name,roles,line_manager_email,password\n";

async fn a_bad_file_reports_every_bad_row_and_imports_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Bad Import School").await;
    let admin = &school.admin.api;
    let users_before = admin.users().await.expect("users").len();
    let audit_before = audit_rows(&app, school.id).await;
    let file = format!(
        "{HEADER}\
         good.one@school.test,Good One,staff,,long-enough-pw\n\
         not-an-email,Bad Email,staff,,long-enough-pw\n\
         no.name@school.test,,staff,,long-enough-pw\n\
         bad.role@school.test,Bad Role,boss,,long-enough-pw\n\
         short.pw@school.test,Short Password,staff,,short\n\
         good.one@school.test,Twice,staff,,long-enough-pw\n\
         few.columns@school.test,Few Columns\n\
         self.managed@school.test,Self Managed,staff,self.managed@school.test,long-enough-pw\n\
         bad.manager@school.test,Bad Manager,staff,not an e-mail,long-enough-pw\n\
         good.two@school.test,Good Two,leader,,long-enough-pw\n"
    );
    let refused = admin.import_staff(&file).await.expect("the server answers").expect_err("the file is refused");
    assert_eq!(refused.code, "invalid_rows");
    assert!(refused.message.contains("nothing was imported"), "{}", refused.message);
    let lines: Vec<u64> = refused.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9, 10], "every bad row, by its line in the file: {:?}", refused.rows);
    let reasons: Vec<(u64, &str)> = vec![
        (3, "not an e-mail"),
        (4, "name"),
        (5, "boss"),
        (6, "10 characters"),
        (7, "line 2"),
        (8, "columns"),
        (9, "own line manager"),
        (10, "line manager"),
    ];
    for (line, reason) in reasons {
        let row = refused.rows.iter().find(|r| r.line == line).expect("the row");
        assert!(row.message.contains(reason), "line {line} should say `{reason}`: {}", row.message);
    }

    // Nothing from the file exists: not even its good rows.
    let users = admin.users().await.expect("users");
    assert_eq!(users.len(), users_before);
    for email in ["good.one@school.test", "good.two@school.test", "no.name@school.test", "self.managed@school.test"] {
        assert!(users.iter().all(|u| u.email != email), "{email} was imported");
        assert_eq!(users_with_email(&app, email).await, 0, "{email} is in the database");
    }
    assert_eq!(audit_rows(&app, school.id).await, audit_before, "a refused import writes nothing to the audit log");
}

async fn rows_that_clash_with_the_database_are_row_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Clash Import School").await;
    let other = app.school("Other Clash Import School").await;
    let admin = &school.admin.api;
    let users_before = scalar(&app, "select count(*) from users where school_id = $1", &school.id.to_string()).await;
    let file = format!(
        "{HEADER}\
         fine.person@school.test,Fine Person,staff,,long-enough-pw\n\
         {},Already Here,staff,,long-enough-pw\n\
         {},Elsewhere,staff,,long-enough-pw\n\
         orphan@school.test,Orphan,staff,nobody@school.test,long-enough-pw\n\
         poached@school.test,Poached,staff,{},long-enough-pw\n",
        school.staff.user.email.to_uppercase(),
        other.staff.user.email,
        other.leader.user.email,
    );
    let refused = admin.import_staff(&file).await.expect("the server answers").expect_err("the file is refused");
    let lines: Vec<u64> = refused.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6], "{:?}", refused.rows);
    assert!(refused.rows[0].message.contains("already exists"), "{:?}", refused.rows[0]);
    assert!(refused.rows[1].message.contains("already exists"), "{:?}", refused.rows[1]);
    assert!(refused.rows[2].message.contains("nobody@school.test"), "{:?}", refused.rows[2]);
    assert!(refused.rows[3].message.contains(&other.leader.user.email), "{:?}", refused.rows[3]);
    assert_eq!(users_with_email(&app, "fine.person@school.test").await, 0);
    assert_eq!(
        scalar(&app, "select count(*) from users where school_id = $1", &school.id.to_string()).await,
        users_before
    );
}

/// A file with both kinds of mistakes: rows wrong on their own, and rows that clash with who is already
/// stored. The admin should get every bad row in one answer, not one kind now and the other after fixing.
async fn a_file_with_both_kinds_of_bad_rows_reports_them_all(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Mixed Import School").await;
    let file = format!(
        "{HEADER}\
         fine.person@school.test,Fine Person,staff,,long-enough-pw\n\
         {},Already Here,staff,,long-enough-pw\n\
         orphan@school.test,Orphan,staff,nobody@school.test,long-enough-pw\n\
         not-an-email,Bad Email,staff,,long-enough-pw\n",
        school.staff.user.email,
    );
    let refused =
        school.admin.api.import_staff(&file).await.expect("the server answers").expect_err("the file is refused");
    let lines: Vec<u64> = refused.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![3, 4, 5], "every bad row, whatever is wrong with it: {:?}", refused.rows);
    assert_eq!(users_with_email(&app, "fine.person@school.test").await, 0);
}

async fn a_good_file_imports_everyone_with_their_line_managers(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Good Import School").await;
    let admin = &school.admin.api;
    let file = format!(
        "{HEADER}\
         worker.a@school.test,Worker A,staff,manager.later@school.test,long-enough-pw\n\
         worker.b@school.test,Worker B,staff,{},long-enough-pw\n\
         Manager.Later@School.Test,Manager Later,leader;dsl,,long-enough-pw\n\
         worker.c@school.test, Worker C ,staff,,long-enough-pw\n",
        school.leader.user.email.to_uppercase(),
    );
    let (code, body) = admin
        .raw(Method::POST, "/api/v1/users/import", Some(RawBody::Text { content_type: "text/csv", text: file }))
        .await
        .expect("the server answers");
    assert_eq!(code.as_u16(), 201, "{body}");
    let report: ImportReport = serde_json::from_value(body).expect("an import report");
    assert_eq!(report.imported, 4);
    assert_eq!(report.users.len(), 4);

    let users = admin.users().await.expect("users");
    let find =
        |email: &str| users.iter().find(|u| u.email == email).unwrap_or_else(|| panic!("{email} was not imported"));
    let manager = find("manager.later@school.test");
    assert_eq!(manager.roles, vec![Role::Leader, Role::Dsl]);
    assert_eq!(manager.line_manager_id, None);
    assert_eq!(find("worker.a@school.test").line_manager_id, Some(manager.id), "a manager defined later in the file");
    assert_eq!(
        find("worker.b@school.test").line_manager_id,
        Some(school.leader.id()),
        "a manager already in the school"
    );
    let c = find("worker.c@school.test");
    assert_eq!(c.line_manager_id, None);
    assert_eq!(c.name, "Worker C");
    assert_eq!(c.roles, vec![Role::Staff]);
    let mut reported: Vec<Uuid> = report.users.iter().map(|u| u.id).collect();
    let mut stored: Vec<Uuid> =
        ["worker.a@school.test", "worker.b@school.test", "manager.later@school.test", "worker.c@school.test"]
            .iter()
            .map(|e| find(e).id)
            .collect();
    reported.sort();
    stored.sort();
    assert_eq!(reported, stored);

    // Imported people sign in with the password from the file.
    let (worker, _) = app.api.login("worker.a@school.test", "long-enough-pw").await.expect("an imported user signs in");
    assert_eq!(worker.me().await.expect("me").line_manager_id, Some(manager.id));

    // Each import is audited with the admin as the actor.
    let imported: Vec<AuditEntry> =
        audit_of(&school.dsl.api).await.into_iter().filter(|e| e.action == "user.imported").collect();
    assert_eq!(imported.len(), 4);
    assert!(imported.iter().all(|e| e.actor_id == Some(school.admin.id())));

    // The same file again: every row now clashes with an existing account, and nothing changes.
    let again = format!("{HEADER}worker.c@school.test,Worker C,staff,,long-enough-pw\n");
    let refused = admin.import_staff(&again).await.expect("the server answers").expect_err("refused");
    assert_eq!(refused.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2]);
    assert!(refused.rows[0].message.contains("already exists"), "{:?}", refused.rows);
    assert_eq!(users_with_email(&app, "worker.c@school.test").await, 1);

    // Only admins import.
    let err = school.leader.api.import_staff(&again).await.unwrap_err();
    assert_eq!(status(&err), Some(403));
}

// ----------------------------------------------------------------------------------------------------
// Escalation plans.

fn step(delay_seconds: i64, recipients: Vec<Recipient>, instruction: &str) -> EscalationStep {
    EscalationStep { delay_seconds, recipients, channels: vec![], instruction: instruction.into() }
}

fn plan(name: &str, steps: Vec<EscalationStep>, is_default: bool) -> EscalationPlanRequest {
    EscalationPlanRequest { name: name.into(), steps, repeat_every_seconds: Some(120), is_default }
}

async fn escalation_plans_are_managed_by_admins(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Plans School").await;
    let other = app.school("Other Plans School").await;
    let admin = &school.admin.api;
    let plan_audit_before: Vec<AuditEntry> =
        audit_of(&school.dsl.api).await.into_iter().filter(|e| e.action.starts_with("escalation_plan.")).collect();

    // A new school has exactly one plan, the default, with the sensible default steps.
    let plans = school.staff.api.escalation_plans().await.expect("plans");
    assert_eq!(plans.len(), 1, "{plans:?}");
    let default = plans[0].clone();
    assert!(default.is_default);
    assert_eq!(default.steps, EscalationPlan::school_default().steps);
    assert_eq!(other.admin.api.escalation_plans().await.expect("plans").len(), 1, "each school has its own");

    // Create.
    let weekend_steps = vec![
        step(0, vec![Recipient::Worker], "Check in now."),
        step(120, vec![Recipient::User { user_id: school.dsl.id() }, Recipient::LineManager], "Phone the worker."),
    ];
    let (code, body) =
        send(admin, Method::POST, "/api/v1/escalation-plans", &plan("Weekend plan", weekend_steps, false)).await;
    assert_eq!(code, 201, "{body}");
    let weekend: EscalationPlanView = serde_json::from_value(body).expect("a plan");
    assert_eq!(weekend.name, "Weekend plan");
    assert!(!weekend.is_default);
    assert_eq!(weekend.repeat_every_seconds, 120);
    assert_eq!(weekend.steps.len(), 2);
    assert_eq!(weekend.steps[1].recipients, vec![Recipient::User { user_id: school.dsl.id() }, Recipient::LineManager]);
    let plans = admin.escalation_plans().await.expect("plans");
    assert_eq!(
        plans.iter().map(|p| (p.id, p.is_default)).collect::<Vec<_>>(),
        vec![(default.id, true), (weekend.id, false)]
    );

    // Edit: the steps change.
    let edited_steps = vec![
        step(0, vec![Recipient::Worker], "Check in now."),
        step(60, vec![Recipient::Role { role: Role::Leader }], "Phone the worker now."),
        step(600, vec![Recipient::Role { role: Role::Leader }], "Call 999."),
    ];
    let path = format!("/api/v1/escalation-plans/{}", weekend.id);
    let (code, body) = send(admin, Method::PUT, &path, &plan("Weekend plan", edited_steps.clone(), false)).await;
    assert_eq!(code, 200, "{body}");
    let edited: EscalationPlanView = serde_json::from_value(body).expect("a plan");
    assert_eq!(edited.id, weekend.id);
    assert_eq!(edited.steps.len(), 3);
    assert_eq!(edited.steps[2].instruction, "Call 999.");
    assert!(edited.updated_at >= weekend.updated_at);
    assert_eq!(admin.escalation_plans().await.expect("plans").iter().find(|p| p.id == weekend.id), Some(&edited));

    // Names are unique within the school, on create and on rename; a refused create changes nothing,
    // even when it asked to become the default.
    let err = admin.create_escalation_plan(&plan("Weekend plan", edited_steps.clone(), true)).await.unwrap_err();
    assert_eq!((status(&err), err.code()), (Some(409), Some("plan_name_taken")), "{err}");
    let err = admin
        .update_escalation_plan(default.id, &plan("Weekend plan", EscalationPlan::school_default().steps, true))
        .await
        .unwrap_err();
    assert_eq!((status(&err), err.code()), (Some(409), Some("plan_name_taken")), "{err}");
    let plans = admin.escalation_plans().await.expect("plans");
    assert_eq!(plans.len(), 2);
    assert_eq!(plans.iter().filter(|p| p.is_default).map(|p| p.id).collect::<Vec<_>>(), vec![default.id]);
    assert_eq!(plans.iter().find(|p| p.id == default.id).map(|p| p.name.as_str()), Some("Default plan"));
    // Another school may use the same name.
    other
        .admin
        .api
        .create_escalation_plan(&plan("Weekend plan", edited_steps.clone(), false))
        .await
        .expect("other school");

    // Making the second plan the default unsets the first.
    let made_default = admin
        .update_escalation_plan(weekend.id, &plan("Weekend plan", edited_steps.clone(), true))
        .await
        .expect("make default");
    assert!(made_default.is_default);
    let plans = admin.escalation_plans().await.expect("plans");
    assert_eq!(
        plans.iter().map(|p| (p.id, p.is_default)).collect::<Vec<_>>(),
        vec![(weekend.id, true), (default.id, false)]
    );
    let defaults = scalar(
        &app,
        "select count(*) from escalation_plans where is_default = 1 and school_id = $1",
        &school.id.to_string(),
    )
    .await;
    assert_eq!(defaults, 1);
    // New visits follow the new default.
    let visit = school.staff.api.plan_session(&low_risk_visit()).await.expect("plan a visit");
    assert_eq!(visit.escalation_plan_id, weekend.id);

    // The only default cannot be unset: the school would be left without one.
    let err =
        admin.update_escalation_plan(weekend.id, &plan("Weekend plan", edited_steps.clone(), false)).await.unwrap_err();
    assert_eq!((status(&err), err.code()), (Some(409), Some("default_plan_required")), "{err}");
    assert!(admin.escalation_plans().await.expect("plans").iter().any(|p| p.id == weekend.id && p.is_default));

    // A step cannot name someone from another school.
    let poached = vec![step(0, vec![Recipient::User { user_id: other.leader.id() }], "Phone the worker.")];
    let err = admin.create_escalation_plan(&plan("Poached plan", poached.clone(), false)).await.unwrap_err();
    assert_eq!((status(&err), err.code()), (Some(422), Some("invalid_steps")), "{err}");
    let err = admin.update_escalation_plan(default.id, &plan("Default plan", poached, false)).await.unwrap_err();
    assert_eq!((status(&err), err.code()), (Some(422), Some("invalid_steps")), "{err}");

    // Only admins create or edit plans.
    for (who, client) in [("staff", &school.staff.api), ("a leader", &school.leader.api), ("the DSL", &school.dsl.api)]
    {
        let err = client.create_escalation_plan(&plan("Mine", edited_steps.clone(), false)).await.unwrap_err();
        assert_eq!(status(&err), Some(403), "{who}: {err}");
        let err =
            client.update_escalation_plan(default.id, &plan("Mine", edited_steps.clone(), true)).await.unwrap_err();
        assert_eq!(status(&err), Some(403), "{who}: {err}");
    }
    let plans = admin.escalation_plans().await.expect("plans");
    assert_eq!(plans.len(), 2);
    assert_eq!(
        plans.iter().find(|p| p.id == default.id).map(|p| p.steps.clone()),
        Some(EscalationPlan::school_default().steps)
    );

    // Every change is in the audit log, in order, by the admin; refused changes are not.
    let changes: Vec<(String, String, Option<Uuid>)> = audit_of(&school.dsl.api)
        .await
        .into_iter()
        .filter(|e| e.action.starts_with("escalation_plan."))
        .skip(plan_audit_before.len())
        .map(|e| (e.action, e.subject, e.actor_id))
        .collect();
    let subject = format!("escalation_plan:{}", weekend.id);
    let by_admin = Some(school.admin.id());
    assert_eq!(
        changes,
        vec![
            ("escalation_plan.created".to_string(), subject.clone(), by_admin),
            ("escalation_plan.updated".to_string(), subject.clone(), by_admin),
            ("escalation_plan.updated".to_string(), subject, by_admin),
        ]
    );
    let details = audit_of(&school.dsl.api).await;
    let last = details.iter().rev().find(|e| e.action == "escalation_plan.updated").expect("the last update");
    assert!(last.detail.contains("Call 999."), "the entry records the new steps: {}", last.detail);
}

// ----------------------------------------------------------------------------------------------------
// Approval rules.

async fn approval_rules_are_set_by_admins(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Rules School").await;
    let defaults = school.admin.api.approval_rules().await.expect("rules");
    assert!(defaults.safe_and_well_needs_approval);
    assert_eq!(defaults.approval_from_risk, Some(RiskLevel::Medium));
    assert!(defaults.high_risk_needs_companion);
    assert_eq!(school.staff.api.approval_rules().await.expect("staff read the rules"), defaults);

    let relaxed = ApprovalRules {
        safe_and_well_needs_approval: false,
        approval_from_risk: None,
        high_risk_needs_companion: false,
    };
    for (who, client) in [("staff", &school.staff.api), ("a leader", &school.leader.api), ("the DSL", &school.dsl.api)]
    {
        let err = client.set_approval_rules(&relaxed).await.unwrap_err();
        assert_eq!((status(&err), err.code()), (Some(403), Some("forbidden")), "{who}: {err}");
    }
    assert_eq!(school.admin.api.approval_rules().await.expect("rules"), defaults, "refused changes change nothing");

    let (code, body) = send(&school.admin.api, Method::PUT, "/api/v1/school/rules", &relaxed).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_value::<ApprovalRules>(body).expect("rules"), relaxed);
    assert_eq!(school.leader.api.approval_rules().await.expect("rules"), relaxed);

    // The rules take effect: a high-risk visit alone now needs neither a companion nor approval.
    let high = school.staff.api.plan_session(&visit_with_risk(RiskLevel::High)).await.expect("plan");
    assert_eq!(high.approval.status, ApprovalStatus::NotRequired);

    // Another school keeps its own rules.
    let other = app.school("Other Rules School").await;
    assert_eq!(other.admin.api.approval_rules().await.expect("rules"), ApprovalRules::default());

    let changes: Vec<AuditEntry> =
        audit_of(&school.dsl.api).await.into_iter().filter(|e| e.action == "school.rules_changed").collect();
    assert_eq!(changes.len(), 1, "one change, by the admin: {changes:?}");
    assert_eq!(changes[0].actor_id, Some(school.admin.id()));
    assert_eq!(changes[0].subject, format!("school:{}", school.id));
}

// ----------------------------------------------------------------------------------------------------
// The audit log.

async fn the_audit_log_is_for_the_dsl_and_admins_and_records_every_action(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Audit School").await;
    let other = app.school("Other Audit School").await;
    let mark = audit_of(&school.dsl.api).await.last().expect("the school's creation is audited").seq;

    // Some actions, by different people.
    let created =
        school.admin.api.create_user(&new_user("audited@school.test", vec![Role::Staff], None)).await.expect("user");
    let rules = ApprovalRules { approval_from_risk: Some(RiskLevel::High), ..ApprovalRules::default() };
    school.admin.api.set_approval_rules(&rules).await.expect("rules");
    school.staff.api.set_pins("2468", "1357").await.expect("pins");
    let visit = school.staff.api.plan_session(&low_risk_visit()).await.expect("plan");
    school
        .staff
        .api
        .send_events(visit.id, &[event(ClientEventKind::Start { location: None }, Duration::zero())])
        .await
        .expect("start");

    // The DSL and admins read it; staff and leaders do not.
    let by_dsl = audit_of(&school.dsl.api).await;
    assert_eq!(audit_of(&school.admin.api).await, by_dsl);
    for (who, client) in [("staff", &school.staff.api), ("a leader", &school.leader.api)] {
        let err = client.audit(0, 100).await.unwrap_err();
        assert_eq!((status(&err), err.code()), (Some(403), Some("forbidden")), "{who}: {err}");
        let err = client.verify_audit().await.unwrap_err();
        assert_eq!((status(&err), err.code()), (Some(403), Some("forbidden")), "{who}: {err}");
    }

    // Our actions are there, in the order they happened, each with its actor.
    let ours: Vec<(&str, String, Option<Uuid>)> =
        by_dsl.iter().filter(|e| e.seq > mark).map(|e| (e.action.as_str(), e.subject.clone(), e.actor_id)).collect();
    let session = format!("session:{}", visit.id);
    assert_eq!(
        ours,
        vec![
            ("user.created", format!("user:{}", created.id), Some(school.admin.id())),
            ("school.rules_changed", format!("school:{}", school.id), Some(school.admin.id())),
            ("user.pins_set", format!("user:{}", school.staff.id()), Some(school.staff.id())),
            ("session.planned", session.clone(), Some(school.staff.id())),
            ("session.started", session, Some(school.staff.id())),
        ]
    );
    // The PINs themselves never reach the log.
    assert!(by_dsl.iter().all(|e| !e.detail.contains("2468") && !e.detail.contains("1357")));

    // A chain: numbered from 1 without gaps, each entry pointing at the one before, in time order.
    assert_eq!(by_dsl[0].seq, 1);
    assert_eq!(by_dsl[0].prev_hash, "0".repeat(64));
    for pair in by_dsl.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert!(pair[1].at >= pair[0].at);
    }
    // Paging reads the same entries.
    let page = school.dsl.api.audit(mark, 2).await.expect("a page");
    assert_eq!(page, by_dsl.iter().filter(|e| e.seq > mark).take(2).cloned().collect::<Vec<_>>());

    let report = school.dsl.api.verify_audit().await.expect("verify");
    assert!(report.intact, "{report:?}");
    assert_eq!(report.entries, by_dsl.len() as i64);
    assert_eq!(report.first_broken_seq, None);
    assert_eq!(school.admin.api.verify_audit().await.expect("verify"), report);

    // Each school has its own log: nothing of ours is in the other's.
    let theirs = audit_of(&other.dsl.api).await;
    assert!(
        theirs
            .iter()
            .all(|e| e.subject != format!("user:{}", created.id) && !e.subject.contains(&visit.id.to_string()))
    );
    assert!(other.dsl.api.verify_audit().await.expect("verify").intact);
}

async fn the_audit_log_is_append_only_and_tampering_shows(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Tamper School").await;
    for n in 0..3 {
        school
            .admin
            .api
            .create_user(&new_user(&format!("person{n}@school.test"), vec![Role::Staff], None))
            .await
            .expect("user");
    }
    let entries = audit_of(&school.dsl.api).await;
    let total = entries.len() as i64;
    assert!(total >= 5, "{entries:?}");
    let middle = entries[entries.len() / 2].clone();
    let school_id = school.id.to_string();
    let pool = &app.state.db.pool;

    // The database itself refuses edits and deletions.
    let update = sqlx::query("update audit_log set detail = 'edited' where school_id = $1 and seq = $2")
        .bind(&school_id)
        .bind(middle.seq)
        .execute(pool)
        .await;
    let err = update.expect_err("an UPDATE of the audit log is refused");
    assert!(err.to_string().contains("append-only"), "{err}");
    let delete = sqlx::query("delete from audit_log where school_id = $1 and seq = $2")
        .bind(&school_id)
        .bind(middle.seq)
        .execute(pool)
        .await;
    let err = delete.expect_err("a DELETE from the audit log is refused");
    assert!(err.to_string().contains("append-only"), "{err}");
    let delete_all = sqlx::query("delete from audit_log").execute(pool).await;
    assert!(delete_all.is_err(), "deleting the whole log is refused");
    assert_eq!(audit_rows(&app, school.id).await, total);
    assert_eq!(audit_of(&school.dsl.api).await, entries);
    assert!(school.dsl.api.verify_audit().await.expect("verify").intact);

    // Someone with the database's keys gets round the trigger and edits one entry's detail.
    let lift = match backend {
        Backend::Sqlite => "drop trigger audit_log_no_update",
        Backend::Postgres => "alter table audit_log disable trigger audit_log_no_update",
    };
    sqlx::query(lift).execute(pool).await.expect("lift the trigger");
    let edited = sqlx::query("update audit_log set detail = 'nothing to see here' where school_id = $1 and seq = $2")
        .bind(&school_id)
        .bind(middle.seq)
        .execute(pool)
        .await
        .expect("the edit goes through without the trigger");
    assert_eq!(edited.rows_affected(), 1);

    let report = school.dsl.api.verify_audit().await.expect("verify");
    assert!(!report.intact, "{report:?}");
    assert_eq!(report.first_broken_seq, Some(middle.seq), "{report:?}");
    assert!(
        report.message.contains(&format!("entry {}", middle.seq)),
        "the message names the entry: {}",
        report.message
    );
    assert!(report.message.contains("altered"), "the message says what happened: {}", report.message);
    assert!(!report.message.contains('{') && !report.message.contains("Error"), "a plain message: {}", report.message);

    // Later entries do not paper over the break.
    school.admin.api.create_user(&new_user("after.tamper@school.test", vec![Role::Staff], None)).await.expect("user");
    let later = school.admin.api.verify_audit().await.expect("verify");
    assert!(!later.intact);
    assert_eq!(later.first_broken_seq, Some(middle.seq));
}

// ----------------------------------------------------------------------------------------------------
// The OpenAPI document and health.

/// Every route registered in `server/src/routes/mod.rs`, but the document's own address.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/ready"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/auth/logout-everywhere"),
    ("get", "/api/v1/me/devices"),
    ("delete", "/api/v1/me/devices/{id}"),
    ("get", "/api/v1/me"),
    ("put", "/api/v1/me/pins"),
    ("post", "/api/v1/me/test-message"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("post", "/api/v1/users/import"),
    ("put", "/api/v1/users/{id}/phone"),
    ("get", "/api/v1/school/rules"),
    ("put", "/api/v1/school/rules"),
    ("get", "/api/v1/school/on-call-rota"),
    ("put", "/api/v1/school/on-call-rota"),
    ("get", "/api/v1/school/reachability"),
    ("put", "/api/v1/users/{id}"),
    ("get", "/api/v1/school/retention"),
    ("put", "/api/v1/school/retention"),
    ("get", "/api/v1/sessions"),
    ("post", "/api/v1/sessions"),
    ("get", "/api/v1/sessions/{id}"),
    ("get", "/api/v1/sessions/{id}/safety-net"),
    ("post", "/api/v1/sessions/{id}/approval/request"),
    ("post", "/api/v1/sessions/{id}/approval/approve"),
    ("post", "/api/v1/sessions/{id}/approval/reject"),
    ("post", "/api/v1/sessions/{id}/events"),
    ("post", "/api/v1/sessions/{id}/pings"),
    ("post", "/api/v1/sessions/{id}/outcome"),
    ("get", "/api/v1/sessions/{id}/messages"),
    ("post", "/api/v1/sessions/{id}/messages"),
    ("get", "/api/v1/escalation-plans"),
    ("post", "/api/v1/escalation-plans"),
    ("put", "/api/v1/escalation-plans/{id}"),
    ("get", "/api/v1/alerts"),
    ("get", "/api/v1/alerts/{id}"),
    ("post", "/api/v1/alerts/{id}/acknowledge"),
    ("post", "/api/v1/alerts/{id}/resolve"),
    ("post", "/api/v1/alerts/{id}/messages"),
    ("get", "/api/v1/board"),
    ("get", "/api/v1/board/events"),
    ("get", "/api/v1/reviews"),
    ("post", "/api/v1/reviews/{id}"),
    ("get", "/api/v1/figures"),
    ("get", "/api/v1/export/sessions"),
    ("get", "/api/v1/signal-map"),
    ("get", "/api/v1/signal-marks"),
    ("post", "/api/v1/signal-marks"),
    ("get", "/api/v1/push/vapid-public-key"),
    ("get", "/api/v1/push/subscriptions"),
    ("post", "/api/v1/push/subscriptions"),
    ("delete", "/api/v1/push/subscriptions"),
    ("post", "/api/v1/push/test"),
    ("get", "/api/v1/push/status"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/audit/verify"),
];

/// The document serves itself; it does not list itself.
const DOCUMENT: &str = "/api/openapi.json";

/// The routes `configure` registers, read from its source, so that a route added there without being
/// added to [`ROUTES`] (and so to this check) fails here.
fn registered_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../../../server/src/routes/mod.rs");
    let scope_at = source.find("web::scope(\"").expect("the /api/v1 scope");
    let scope = source[scope_at + "web::scope(\"".len()..].split('"').next().expect("the scope's path");
    source
        .match_indices(".route(\"")
        .map(|(at, found)| {
            let rest = &source[at + found.len()..];
            let path = rest.split('"').next().expect("a path");
            let method = rest.split("web::").nth(1).and_then(|m| m.split("()").next()).expect("a method");
            let path = if at > scope_at { format!("{scope}{path}") } else { path.to_string() };
            (method.to_string(), path)
        })
        .collect()
}

async fn the_openapi_document_lists_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let expected: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let mut registered = registered_routes();
    assert!(registered.remove(&("get".to_string(), DOCUMENT.to_string())), "the document is served at {DOCUMENT}");
    assert_eq!(registered, expected, "ROUTES must match what routes/mod.rs registers");

    let (code, document) = app.api.raw(Method::GET, DOCUMENT, None).await.expect("the document");
    assert_eq!(code.as_u16(), 200);
    let version = document["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3."), "OpenAPI 3.x, got {version}");
    assert!(document["info"]["title"].is_string());
    let paths = document["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
            methods
                .into_iter()
                .filter(|m| ["get", "put", "post", "delete", "patch", "head", "options"].contains(&m.as_str()))
                .map(move |m| (m, path.clone()))
        })
        .collect();
    let missing: Vec<_> = expected.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&expected).collect();
    assert!(missing.is_empty(), "registered but not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not registered: {extra:?}");
    for (method, path) in &expected {
        let operation = &paths[path.as_str()][method.as_str()];
        assert!(
            operation["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} lists its responses"
        );
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object(), "the bearer scheme is described");

    for (path, status) in [("/health", "ok"), ("/ready", "ready")] {
        let (code, body) = app.api.raw(Method::GET, path, None).await.expect("health");
        assert_eq!(code.as_u16(), 200, "{path}: {body}");
        assert_eq!(body["status"], status, "{path}: {body}");
    }
}

on_both_databases!(
    admins_create_users_with_line_managers,
    a_bad_file_reports_every_bad_row_and_imports_nothing,
    rows_that_clash_with_the_database_are_row_errors,
    a_file_with_both_kinds_of_bad_rows_reports_them_all,
    a_good_file_imports_everyone_with_their_line_managers,
    escalation_plans_are_managed_by_admins,
    approval_rules_are_set_by_admins,
    the_audit_log_is_for_the_dsl_and_admins_and_records_every_action,
    the_audit_log_is_append_only_and_tampering_shows,
    the_openapi_document_lists_every_route,
);
