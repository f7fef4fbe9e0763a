//! The demo school: invented people (never anyone from a real policy) and a few planned visits, so a
//! new install has something to sign in to.

use chrono::Duration;
use homeward_shared::api::CreateUserRequest;
use homeward_shared::{
    CheckInInterval, Coordinates, HomeVisitKind, RiskAssessment, RiskLevel, Role, SessionKind, VisitDuration,
};
use uuid::Uuid;

use crate::error::ApiError;
use crate::routes::users::create_user;
use crate::state::AppState;
use crate::store::sessions::{self, NewEvent, NewSession, Source};
use crate::store::{plans, schools, users};
use homeward_shared::session::{Event, EventKind};

pub const SCHOOL: &str = "Harbourside Academy (demo)";
pub const PASSWORD: &str = "demo-password-1";

pub struct DemoPerson {
    pub name: &'static str,
    pub email: &'static str,
    pub roles: &'static [Role],
}

pub const PEOPLE: [DemoPerson; 5] = [
    DemoPerson { name: "Morgan Ellery", email: "morgan.ellery@demo.homeward.test", roles: &[Role::Admin] },
    DemoPerson { name: "Priya Okafor", email: "priya.okafor@demo.homeward.test", roles: &[Role::Leader, Role::Staff] },
    DemoPerson {
        name: "Tomasz Brennan",
        email: "tomasz.brennan@demo.homeward.test",
        roles: &[Role::Dsl, Role::Leader],
    },
    DemoPerson { name: "Dana Whitfield", email: "dana.whitfield@demo.homeward.test", roles: &[Role::Staff] },
    DemoPerson { name: "Sam Adeyemi", email: "sam.adeyemi@demo.homeward.test", roles: &[Role::Staff] },
];

/// Seed the demo school unless it exists; returns its id.
pub async fn seed(state: &AppState) -> Result<(Uuid, bool), ApiError> {
    if let Some(id) = schools::find_by_name(&state.db.pool, SCHOOL).await? {
        return Ok((id, false));
    }
    // Check the people before the school is written: a half-seeded demo school would be taken for a
    // whole one by every later run.
    for person in &PEOPLE {
        if users::find_by_email(&state.db.pool, person.email).await?.is_some() {
            return Err(ApiError::conflict(
                "email_taken",
                format!("cannot seed the demo school: an account with the e-mail {} already exists", person.email),
            ));
        }
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let school_id = schools::create(&mut tx, SCHOOL, now).await?;
    tx.commit().await?;
    let mut ids = Vec::new();
    for (n, person) in PEOPLE.iter().enumerate() {
        // Staff report to Priya Okafor, the line manager.
        let line_manager_id = if person.roles == [Role::Staff] { ids.get(1).copied() } else { None };
        let user = create_user(
            state,
            school_id,
            None,
            CreateUserRequest {
                email: person.email.into(),
                name: person.name.into(),
                password: PASSWORD.into(),
                roles: person.roles.to_vec(),
                line_manager_id,
                phone: None,
            },
        )
        .await?;
        ids.push(user.id);
        debug_assert_eq!(ids.len(), n + 1);
    }
    let dana = ids[3];
    let plan = plans::default_for(&state.db.pool, school_id).await?;
    let visits = [
        (
            SessionKind::HomeVisit(HomeVisitKind::Procedural),
            "14 Quayside Row, Harbourside",
            51.4545,
            -2.5879,
            60,
            RiskLevel::Low,
            "Two adults and a toddler. Friendly dog, kept in the garden.",
        ),
        (
            SessionKind::HomeVisit(HomeVisitKind::SafeAndWell),
            "3 Lantern Court, Harbourside",
            51.4561,
            -2.5912,
            45,
            RiskLevel::Medium,
            "Day-3 absence. Parent has been hostile on the phone before.",
        ),
        (
            SessionKind::HomeVisit(HomeVisitKind::Education),
            "27 Ropewalk Lane, Harbourside",
            51.4530,
            -2.5850,
            30,
            RiskLevel::Low,
            "Delivering a work pack; no concerns known.",
        ),
    ];
    for (n, (kind, address, lat, lon, minutes, risk, notes)) in visits.into_iter().enumerate() {
        let approval_required = risk >= RiskLevel::Medium || kind == SessionKind::HomeVisit(HomeVisitKind::SafeAndWell);
        let new = NewSession {
            school_id,
            worker_id: dana,
            companion_id: None,
            kind,
            address: address.into(),
            location: Some(Coordinates::parse(lat, lon)?),
            geofence_radius_m: 150,
            pupil_reference: Some(format!("HBA-{}", 1042 + n * 17)),
            household_notes: notes.into(),
            planned_start: now + Duration::hours(1 + 24 * n as i64),
            expected_duration: VisitDuration::parse(minutes)?,
            check_in_interval: Some(CheckInInterval::parse(20)?),
            escalation_plan_id: plan,
            risk_assessment: RiskAssessment::with_overall(risk),
            approval_required,
        };
        let mut tx = state.db.begin().await?;
        let id = sessions::insert(&mut tx, &new, dana, now).await?;
        if approval_required {
            let row = sessions::get(tx.conn(), id).await?.ok_or(ApiError::NotFound("session"))?;
            let event = Event { id: Uuid::new_v4(), at: now, kind: EventKind::ApprovalRequested };
            sessions::record(
                &mut tx,
                &row,
                vec![NewEvent { event, source: Source::Server, actor_id: Some(dana) }],
                now,
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok((school_id, true))
}

pub fn sign_ins() -> String {
    let mut out = format!("Demo school: {SCHOOL}\nDemo sign-ins (password for all: {PASSWORD}):\n");
    for p in &PEOPLE {
        let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
        out.push_str(&format!("  {:<38} {:<16} {}\n", p.email, p.name, roles.join(", ")));
    }
    out
}
