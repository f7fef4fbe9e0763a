//! The safety net under the safety net: before a visit starts, check that every step of its plan would
//! reach at least one person through a working channel at the times the step could fire, and tell the
//! worker and the admins if not; once a day, check that every leader can be reached at all.

use std::collections::HashMap;

use chrono::Duration;
use homeward_shared::api::{AlertKind, PersonReach, Reachability, ReachabilityReport, SafetyNetReport, StepReach};
use homeward_shared::escalation::Channel;
use homeward_shared::rota::OnCallRota;
use homeward_shared::session::SessionStatus;
use homeward_shared::{EscalationStep, Recipient, Role};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::parse_id;
use crate::clock::to_millis;
use crate::db::WriteTx;
use crate::error::ApiError;
use crate::escalation::alerts;
use crate::escalation::timers::{self, NewTimer, TimerKind};
use crate::notify::Configured;
use crate::store::sessions::SessionRow;
use crate::store::{audit, plans, rota};

/// The second check runs this long before the planned start, with the channels as they are by then.
pub const CHECK_BEFORE_START: Duration = Duration::minutes(30);
/// At most this many deadlines of one visit are checked (a long visit with frequent check-ins).
const MAX_TRIGGERS: usize = 96;

/// One person of the school as the checks see them.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: Uuid,
    pub name: String,
    pub roles: Vec<Role>,
    pub line_manager: Option<Uuid>,
    pub push_devices: i64,
    pub has_phone: bool,
}

impl Person {
    /// The channels of `wanted` that would carry a message to this person, in order.
    pub fn working(&self, configured: Configured, wanted: &[Channel]) -> Vec<Channel> {
        wanted
            .iter()
            .copied()
            .filter(|c| configured.has(*c))
            .filter(|c| match c {
                Channel::Push => self.push_devices > 0,
                Channel::Email => true,
                Channel::Sms => self.has_phone,
            })
            .collect()
    }

    /// Why none of `wanted` reaches this person, in words.
    fn why_not(&self, configured: Configured, wanted: &[Channel]) -> String {
        let reasons: Vec<&str> = wanted
            .iter()
            .map(|c| match c {
                Channel::Push if self.push_devices == 0 => "no device subscribed to alerts",
                Channel::Push => "push is not set up on this server",
                Channel::Email => "e-mail is not set up on this server",
                Channel::Sms if !configured.sms => "SMS is not set up on this server",
                Channel::Sms => "no phone number for SMS",
            })
            .collect();
        format!("{} ({})", self.name, reasons.join(", "))
    }
}

/// user id, name, roles, line manager, phone, push devices.
type PersonRow = (String, String, String, Option<String>, Option<String>, i64);

/// The active people of a school, with what could reach them.
pub async fn people(conn: &mut sqlx::AnyConnection, school_id: Uuid) -> Result<HashMap<Uuid, Person>, ApiError> {
    let rows: Vec<PersonRow> = sqlx::query_as(
        "select u.user_id, u.name, u.roles, u.line_manager_id, u.phone, \
         (select count(*) from push_subscriptions p where p.user_id = u.user_id) \
         from users u where u.school_id = $1 and u.active = 1",
    )
    .bind(school_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(id, name, roles, line_manager, phone, push_devices)| {
            let id = parse_id(&id)?;
            Ok((
                id,
                Person {
                    id,
                    name,
                    roles: crate::store::users::decode_roles(&roles),
                    line_manager: line_manager.map(|m| parse_id(&m)).transpose()?,
                    push_devices,
                    has_phone: phone.is_some_and(|p| !p.is_empty()),
                },
            ))
        })
        .collect()
}

/// The moments the plan could be triggered: each check-in deadline during the visit and its planned end.
pub fn triggers(planned_start: Timestamp, duration_minutes: i64, interval_minutes: Option<i64>) -> Vec<Timestamp> {
    let end = planned_start + Duration::minutes(duration_minutes);
    let mut at = Vec::new();
    if let Some(every) = interval_minutes.filter(|m| *m > 0) {
        let mut next = planned_start + Duration::minutes(every);
        while next < end && at.len() < MAX_TRIGGERS - 1 {
            at.push(next);
            next += Duration::minutes(every);
        }
    }
    at.push(end);
    at
}

/// What the checks need to know about one visit, gathered from the database.
pub struct Scene<'a> {
    pub worker: Uuid,
    pub people: &'a HashMap<Uuid, Person>,
    pub configured: Configured,
    pub rota: &'a OnCallRota,
}

impl Scene<'_> {
    /// Who a step names at `at`, and whether it named only an on-call leader and nobody was on call.
    fn named(&self, step: &EscalationStep, at: Timestamp) -> (Vec<&Person>, bool) {
        fn add<'p>(named: &mut Vec<&'p Person>, p: Option<&'p Person>) {
            if let Some(p) = p
                && !named.iter().any(|n| n.id == p.id)
            {
                named.push(p);
            }
        }
        let mut named: Vec<&Person> = Vec::new();
        let mut nobody_on_call = false;
        for recipient in &step.recipients {
            match recipient {
                Recipient::Worker => add(&mut named, self.people.get(&self.worker)),
                Recipient::LineManager => add(
                    &mut named,
                    self.people.get(&self.worker).and_then(|w| w.line_manager).and_then(|m| self.people.get(&m)),
                ),
                Recipient::Role { role } => {
                    let mut with: Vec<&Person> = self.people.values().filter(|p| p.roles.contains(role)).collect();
                    with.sort_by(|a, b| a.name.cmp(&b.name));
                    for p in with {
                        add(&mut named, Some(p));
                    }
                }
                Recipient::User { user_id } => add(&mut named, self.people.get(user_id)),
                // As when the step fires: an on-call leader who is deactivated is nobody on call.
                Recipient::OnCallLeader => {
                    match rota::on_call_at(self.rota, at).leader().and_then(|id| self.people.get(&id)) {
                        Some(leader) => add(&mut named, Some(leader)),
                        None => nobody_on_call = true,
                    }
                }
            }
        }
        let falls_through = nobody_on_call && named.is_empty();
        (named, falls_through)
    }

    fn local(&self, at: Timestamp) -> String {
        let tz = rota::timezone(self.rota).unwrap_or(chrono_tz::Europe::London);
        at.with_timezone(&tz).format("%a %-d %b %H:%M").to_string()
    }

    /// Check every step at every moment it could fire. Pure: the database was read beforehand.
    pub fn check(&self, steps: &[EscalationStep], triggers: &[Timestamp]) -> (Vec<StepReach>, Vec<String>) {
        let mut reaches = Vec::with_capacity(steps.len());
        let mut problems = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            let n = index + 1;
            let last = index + 1 == steps.len();
            let mut problem: Option<String> = None;
            let mut first: Option<(Timestamp, Vec<PersonReach>, bool)> = None;
            for trigger in triggers {
                let at = *trigger + Duration::seconds(step.delay_seconds);
                let (named, falls_through) = self.named(step, at);
                let reach: Vec<PersonReach> = named
                    .iter()
                    .filter_map(|p| {
                        let channels = p.working(self.configured, &step.channels);
                        (!channels.is_empty()).then(|| PersonReach {
                            user_id: p.id,
                            name: p.name.clone(),
                            channels: channels.iter().map(|c| c.as_str().to_string()).collect(),
                        })
                    })
                    .collect();
                if problem.is_none() {
                    problem = if falls_through && last {
                        Some(format!(
                            "step {n} at {}: it is the last step and names only the on-call leader, but nobody is on call then",
                            self.local(at)
                        ))
                    } else if falls_through {
                        None
                    } else if named.is_empty() {
                        Some(format!(
                            "step {n} at {}: it names nobody who is active in the school (has the worker a line manager?)",
                            self.local(at)
                        ))
                    } else if reach.is_empty() {
                        let why: Vec<String> =
                            named.iter().map(|p| p.why_not(self.configured, &step.channels)).collect();
                        Some(format!(
                            "step {n} at {}: nobody it names can be reached: {}",
                            self.local(at),
                            why.join("; ")
                        ))
                    } else {
                        None
                    };
                }
                if first.is_none() {
                    first = Some((at, reach, falls_through));
                }
            }
            let (fires_at, reaches_at_first, falls_through) = first.unwrap_or((triggers[0], vec![], false));
            if let Some(p) = &problem {
                problems.push(p.clone());
            }
            reaches.push(StepReach { step: n as i64, fires_at, reaches: reaches_at_first, falls_through, problem });
        }
        (reaches, problems)
    }
}

/// Check one visit's plan as things stand now.
pub async fn check(
    conn: &mut sqlx::AnyConnection,
    session: &SessionRow,
    configured: Configured,
    now: Timestamp,
) -> Result<SafetyNetReport, ApiError> {
    let plan = plans::get_in_school(&mut *conn, session.school_id, session.escalation_plan_id).await?;
    let rota = rota::get(&mut *conn, session.school_id).await?;
    let people = people(conn, session.school_id).await?;
    let scene = Scene { worker: session.worker_id, people: &people, configured, rota: &rota };
    let triggers =
        triggers(session.planned_start, session.expected_duration_minutes, session.check_in_interval_minutes);
    let (steps, problems) = scene.check(&plan.steps, &triggers);
    Ok(SafetyNetReport { session_id: session.id, ok: problems.is_empty(), checked_at: now, steps, problems })
}

/// Arm the checks of a newly planned visit: one at once, and one shortly before it starts.
pub async fn arm(tx: &mut WriteTx, session: &SessionRow, now: Timestamp) -> Result<(), ApiError> {
    if !tx.signals.safety_net {
        return Ok(());
    }
    let mut due = vec![now];
    let before_start = session.planned_start - CHECK_BEFORE_START;
    if before_start > now + Duration::minutes(1) {
        due.push(before_start);
    }
    for due_at in due {
        timers::insert(
            tx,
            NewTimer {
                school_id: session.school_id,
                kind: TimerKind::SafetyNetCheck,
                session_id: Some(session.id),
                alert_id: None,
                step_index: None,
                due_at,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// The timer: check a visit that has not started yet, keep the result, and if a step would reach
/// nobody tell the worker and the school's admins (once per visit).
pub async fn fire_check(tx: &mut WriteTx, session: &SessionRow, now: Timestamp) -> Result<(), ApiError> {
    if !tx.signals.safety_net || session.status != SessionStatus::Planned || session.started_at.is_some() {
        return Ok(());
    }
    let configured = tx.channels;
    let report = check(tx.conn(), session, configured, now).await?;
    sqlx::query(
        "insert into safety_net_checks (session_id, school_id, checked_at, ok, report) values ($1, $2, $3, $4, $5) \
         on conflict (session_id) do update set checked_at = excluded.checked_at, ok = excluded.ok, report = excluded.report",
    )
    .bind(session.id.to_string())
    .bind(session.school_id.to_string())
    .bind(to_millis(now))
    .bind(i64::from(report.ok))
    .bind(serde_json::to_string(&report).map_err(anyhow::Error::from)?)
    .execute(tx.conn())
    .await?;
    if report.ok {
        return Ok(());
    }
    let text = format!(
        "Before {}'s visit at {}: {}. Subscribe a device, add a phone number or an on-call leader, or choose another plan.",
        session.worker_name,
        session.planned_start.format("%H:%M"),
        report.problems.join(" "),
    );
    let told = [Recipient::Worker, Recipient::Role { role: Role::Admin }];
    alerts::raise_notice(tx, session, AlertKind::SafetyNet, &told, &text, None, now).await.map(|_| ())
}

/// Can each leader and the DSL be reached at all, on any channel?
pub async fn reachability(
    conn: &mut sqlx::AnyConnection,
    school_id: Uuid,
    configured: Configured,
    now: Timestamp,
) -> Result<ReachabilityReport, ApiError> {
    let all = [Channel::Push, Channel::Email, Channel::Sms];
    let mut people: Vec<Reachability> = people(conn, school_id)
        .await?
        .into_values()
        .filter(|p| p.roles.iter().any(|r| matches!(r, Role::Leader | Role::Dsl)))
        .map(|p| {
            let working = p.working(configured, &all);
            Reachability {
                user_id: p.id,
                name: p.name.clone(),
                roles: p.roles.clone(),
                push_devices: p.push_devices,
                email: working.contains(&Channel::Email),
                sms: working.contains(&Channel::Sms),
                reachable: !working.is_empty(),
            }
        })
        .collect();
    people.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ReachabilityReport { checked_at: now, people })
}

/// A school's channels are checked once in this long, however many server processes run or restart.
pub const DAILY: Duration = Duration::hours(24);

/// The daily check: for every school not checked in the last day, record in the audit log which leaders
/// no channel can reach. Returns how many leaders could not be reached.
pub async fn daily_check(db: &crate::db::Db, now: Timestamp) -> Result<usize, ApiError> {
    let schools: Vec<(String, Option<i64>)> = sqlx::query_as(
        "select s.school_id, (select max(a.at) from audit_log a where a.school_id = s.school_id \
         and a.action = 'channels.daily_check') from schools s",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut unreachable = 0;
    for (school, last) in schools {
        if last.is_some_and(|at| to_millis(now) - at < DAILY.num_milliseconds()) {
            continue;
        }
        let school_id = parse_id(&school)?;
        let mut conn = db.pool.acquire().await?;
        let report = reachability(&mut conn, school_id, db.channels, now).await?;
        drop(conn);
        let missing: Vec<&str> = report.people.iter().filter(|p| !p.reachable).map(|p| p.name.as_str()).collect();
        unreachable += missing.len();
        let detail = if missing.is_empty() {
            format!("all {} leaders can be reached", report.people.len())
        } else {
            format!(
                "{} of {} leaders cannot be reached on any channel: {}",
                missing.len(),
                report.people.len(),
                missing.join(", ")
            )
        };
        let mut tx = db.begin().await?;
        audit::append(
            &mut tx,
            audit::Action {
                school_id,
                actor_id: None,
                action: "channels.daily_check",
                subject: format!("school:{school_id}"),
                detail,
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
    }
    Ok(unreachable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use homeward_shared::rota::{Day, RotaShift};

    fn person(name: &str, roles: Vec<Role>, push_devices: i64, has_phone: bool) -> Person {
        Person { id: Uuid::new_v4(), name: name.into(), roles, line_manager: None, push_devices, has_phone }
    }

    fn step(delay_seconds: i64, recipients: Vec<Recipient>, channels: Vec<Channel>) -> EscalationStep {
        EscalationStep { delay_seconds, recipients, channels, instruction: "Phone the worker".into() }
    }

    const PUSH_ONLY: Configured = Configured { push: true, email: false, sms: false };
    const ALL: Configured = Configured { push: true, email: true, sms: true };

    #[test]
    fn working_channels_keep_the_steps_order_and_skip_what_cannot_carry() {
        let with_phone = person("Pat", vec![Role::Leader], 0, true);
        assert_eq!(
            with_phone.working(ALL, &[Channel::Sms, Channel::Push, Channel::Email]),
            vec![Channel::Sms, Channel::Email]
        );
        assert_eq!(with_phone.working(PUSH_ONLY, &[Channel::Sms, Channel::Push, Channel::Email]), vec![]);
        let with_device = person("Sam", vec![Role::Leader], 2, false);
        assert_eq!(with_device.working(ALL, &[Channel::Sms, Channel::Push]), vec![Channel::Push]);
    }

    #[test]
    fn triggers_are_each_check_in_and_the_planned_end() {
        let start = chrono::Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap();
        assert_eq!(
            triggers(start, 60, Some(20)),
            vec![start + Duration::minutes(20), start + Duration::minutes(40), start + Duration::minutes(60)]
        );
        assert_eq!(triggers(start, 60, None), vec![start + Duration::minutes(60)]);
    }

    #[test]
    fn flags_a_step_nobody_can_receive_and_passes_one_someone_can() {
        let mut worker = person("Worker", vec![Role::Staff], 1, false);
        let manager = person("Manager", vec![Role::Leader], 0, false);
        worker.line_manager = Some(manager.id);
        let people: HashMap<Uuid, Person> = [(worker.id, worker.clone()), (manager.id, manager.clone())].into();
        let rota = OnCallRota::default();
        let steps = vec![
            step(0, vec![Recipient::Worker], vec![Channel::Push]),
            step(300, vec![Recipient::LineManager], vec![Channel::Push, Channel::Email]),
        ];
        let at = [chrono::Utc.with_ymd_and_hms(2026, 3, 10, 10, 0, 0).unwrap()];
        let push_only = Scene { worker: worker.id, people: &people, configured: PUSH_ONLY, rota: &rota };
        let (reaches, problems) = push_only.check(&steps, &at);
        assert_eq!(reaches[0].reaches.len(), 1);
        assert!(reaches[0].problem.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("step 2 at Tue 10 Mar 10:05: nobody it names can be reached: Manager"),
            "{problems:?}"
        );
        assert!(problems[0].contains("no device subscribed") && problems[0].contains("e-mail is not set up"));
        // With e-mail set up the line manager is reachable.
        let with_email = Scene { configured: ALL, ..push_only };
        let (reaches, problems) = with_email.check(&steps, &at);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(reaches[1].reaches[0].channels, vec!["email".to_string()]);
    }

    #[test]
    fn an_on_call_step_falls_through_in_school_hours_and_reaches_the_rota_at_night() {
        let worker = person("Worker", vec![Role::Staff], 1, false);
        let on_call = person("On call", vec![Role::Leader], 1, false);
        let people: HashMap<Uuid, Person> = [(worker.id, worker.clone()), (on_call.id, on_call.clone())].into();
        let rota = OnCallRota {
            weekly: vec![RotaShift {
                day: Day::Tuesday,
                start: "17:00".parse().unwrap(),
                end: "23:00".parse().unwrap(),
                user_id: on_call.id,
            }],
            ..OnCallRota::default()
        };
        let scene = Scene { worker: worker.id, people: &people, configured: PUSH_ONLY, rota: &rota };
        let steps = vec![
            step(0, vec![Recipient::OnCallLeader], vec![Channel::Push]),
            step(60, vec![Recipient::Worker], vec![Channel::Push]),
        ];
        let evening = [chrono::Utc.with_ymd_and_hms(2026, 3, 10, 19, 0, 0).unwrap()];
        let (reaches, problems) = scene.check(&steps, &evening);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(reaches[0].reaches[0].user_id, on_call.id);
        let morning = [chrono::Utc.with_ymd_and_hms(2026, 3, 10, 10, 0, 0).unwrap()];
        let (reaches, problems) = scene.check(&steps, &morning);
        assert!(problems.is_empty(), "a step that falls through to one that reaches someone is fine: {problems:?}");
        assert!(reaches[0].falls_through);
        // An on-call leader who has left (deactivated, so not among the active people) is nobody on call.
        let without: HashMap<Uuid, Person> = [(worker.id, worker.clone())].into();
        let (reaches, _) = Scene { people: &without, ..scene }.check(&steps, &evening);
        assert!(reaches[0].falls_through, "{reaches:#?}");
        // As the last step, falling through reaches nobody.
        let (_, problems) = scene.check(&steps[..1], &morning);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("last step"), "{problems:?}");
    }
}
