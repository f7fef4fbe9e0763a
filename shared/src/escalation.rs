//! The school's "agreed plan": what happens, and to whom, when a worker does not report in.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{FieldError, Role};

/// Who a step notifies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Recipient {
    /// The lone worker themself ("please check in now").
    Worker,
    /// The worker's line manager.
    LineManager,
    /// Everyone in the school with this role.
    Role { role: Role },
    /// A named person.
    User { user_id: Uuid },
    /// Whoever the school's on-call rota names at the moment the step fires. When nobody is on call
    /// (school hours in term time, or a gap in the rota) the step moves straight on to the next.
    OnCallLeader,
}

/// How a step reaches its recipients, tried in the step's order: a recipient the first channel cannot
/// reach (no device, no phone number, a failed send) is tried on the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Web Push to each of the recipient's subscribed browsers.
    Push,
    /// E-mail over the deployment's SMTP server.
    Email,
    /// A text message through the deployment's SMS provider, to the recipient's phone number.
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Push => "push",
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Channel::Push, Channel::Email, Channel::Sms].into_iter().find(|c| c.as_str() == raw)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationStep {
    /// Seconds after the trigger (the missed deadline) at which this step fires.
    pub delay_seconds: i64,
    pub recipients: Vec<Recipient>,
    #[serde(default = "default_channels")]
    pub channels: Vec<Channel>,
    /// What the recipient is asked to do, shown with the alert.
    pub instruction: String,
}

/// A step that names no channels tries push first, then e-mail: every user has an address, so a leader
/// whose browser is closed is still reached. SMS costs money per message, so a step asks for it.
pub fn default_channels() -> Vec<Channel> {
    vec![Channel::Push, Channel::Email]
}

fn default_repeat() -> i64 {
    EscalationPlan::DEFAULT_REPEAT_SECONDS
}

/// A validated plan: named, at least one step, delays non-negative and in order, every step with a
/// recipient and an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationPlan {
    pub name: String,
    pub steps: Vec<EscalationStep>,
    /// After the last step, the alert repeats to every leader this often until someone takes ownership.
    #[serde(default = "default_repeat")]
    pub repeat_every_seconds: i64,
}

impl EscalationPlan {
    pub const MAX_STEPS: usize = 20;
    pub const MAX_DELAY_SECONDS: i64 = 24 * 3600;
    pub const DEFAULT_REPEAT_SECONDS: i64 = 300;

    pub fn parse(name: &str, steps: Vec<EscalationStep>, repeat_every_seconds: i64) -> Result<Self, FieldError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(FieldError::new("name", "a plan needs a name of 1 to 100 characters"));
        }
        if steps.is_empty() {
            return Err(FieldError::new("steps", "a plan needs at least one step"));
        }
        if steps.len() > Self::MAX_STEPS {
            return Err(FieldError::new("steps", format!("a plan has at most {} steps", Self::MAX_STEPS)));
        }
        if !(1..=Self::MAX_DELAY_SECONDS).contains(&repeat_every_seconds) {
            return Err(FieldError::new(
                "repeat_every_seconds",
                "the repeat interval must be between 1 second and 24 hours",
            ));
        }
        let mut previous = 0;
        let mut cleaned = Vec::with_capacity(steps.len());
        for (index, mut step) in steps.into_iter().enumerate() {
            let n = index + 1;
            if step.delay_seconds < 0 {
                return Err(FieldError::new("steps", format!("step {n}: the delay cannot be negative")));
            }
            if step.delay_seconds > Self::MAX_DELAY_SECONDS {
                return Err(FieldError::new("steps", format!("step {n}: the delay is more than 24 hours")));
            }
            if step.delay_seconds < previous {
                return Err(FieldError::new("steps", format!("step {n}: steps must be in order of their delay")));
            }
            previous = step.delay_seconds;
            if step.recipients.is_empty() {
                return Err(FieldError::new("steps", format!("step {n}: a step needs at least one recipient")));
            }
            step.instruction = step.instruction.trim().to_string();
            if step.instruction.is_empty() {
                return Err(FieldError::new(
                    "steps",
                    format!("step {n}: a step needs an instruction for its recipients"),
                ));
            }
            if step.instruction.chars().count() > 500 {
                return Err(FieldError::new(
                    "steps",
                    format!("step {n}: the instruction is longer than 500 characters"),
                ));
            }
            if step.channels.is_empty() {
                step.channels = default_channels();
            }
            // The order is the fallback order: keep the first mention of each channel.
            let mut seen = Vec::with_capacity(step.channels.len());
            step.channels.retain(|c| {
                let first = !seen.contains(c);
                seen.push(*c);
                first
            });
            step.recipients.dedup();
            cleaned.push(step);
        }
        Ok(Self { name: name.to_string(), steps: cleaned, repeat_every_seconds })
    }

    /// The plan every new school starts with, from the lone-working policy's escalation.
    pub fn school_default() -> Self {
        let step = |minutes: i64, recipients: Vec<Recipient>, instruction: &str| EscalationStep {
            delay_seconds: minutes * 60,
            recipients,
            channels: default_channels(),
            instruction: instruction.to_string(),
        };
        Self {
            name: "Default plan".to_string(),
            steps: vec![
                step(
                    0,
                    vec![Recipient::Worker],
                    "You have missed a check-in. Check in now, or press panic if you need help.",
                ),
                step(
                    5,
                    vec![Recipient::LineManager],
                    "Phone the worker now. If you cannot reach them, take ownership of this alert.",
                ),
                step(
                    15,
                    vec![Recipient::Role { role: Role::Dsl }, Recipient::Role { role: Role::Leader }],
                    "The worker has not responded for 15 minutes. Phone them and the visit address; take ownership.",
                ),
                step(
                    30,
                    vec![Recipient::Role { role: Role::Leader }],
                    "Call 999 now and give the police these visit details.",
                ),
            ],
            repeat_every_seconds: Self::DEFAULT_REPEAT_SECONDS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn step(delay_seconds: i64) -> EscalationStep {
        EscalationStep {
            delay_seconds,
            recipients: vec![Recipient::Worker],
            channels: vec![],
            instruction: "Check in".into(),
        }
    }

    #[test]
    fn default_plan_is_valid() {
        let plan = EscalationPlan::school_default();
        assert_eq!(EscalationPlan::parse(&plan.name, plan.steps.clone(), plan.repeat_every_seconds).unwrap(), plan);
    }

    #[test]
    fn rejects_bad_plans() {
        assert_eq!(EscalationPlan::parse("", vec![step(0)], 60).unwrap_err().field, "name");
        assert_eq!(EscalationPlan::parse("p", vec![], 60).unwrap_err().field, "steps");
        assert!(EscalationPlan::parse("p", vec![step(-1)], 60).unwrap_err().message.contains("negative"));
        assert!(EscalationPlan::parse("p", vec![step(10), step(5)], 60).unwrap_err().message.contains("step 2"));
        let mut no_recipient = step(0);
        no_recipient.recipients.clear();
        assert!(EscalationPlan::parse("p", vec![no_recipient], 60).unwrap_err().message.contains("recipient"));
        let mut no_instruction = step(0);
        no_instruction.instruction = "  ".into();
        assert!(EscalationPlan::parse("p", vec![no_instruction], 60).unwrap_err().message.contains("instruction"));
        assert_eq!(EscalationPlan::parse("p", vec![step(0)], 0).unwrap_err().field, "repeat_every_seconds");
    }

    #[test]
    fn empty_channels_default_to_push_then_email() {
        let plan = EscalationPlan::parse("p", vec![step(0)], 60).unwrap();
        assert_eq!(plan.steps[0].channels, vec![Channel::Push, Channel::Email]);
    }

    #[test]
    fn channel_order_is_kept_and_repeats_dropped() {
        let mut s = step(0);
        s.channels = vec![Channel::Sms, Channel::Push, Channel::Sms, Channel::Email, Channel::Push];
        let plan = EscalationPlan::parse("p", vec![s], 60).unwrap();
        assert_eq!(plan.steps[0].channels, vec![Channel::Sms, Channel::Push, Channel::Email]);
        assert_eq!(serde_json::to_string(&plan.steps[0].channels).unwrap(), r#"["sms","push","email"]"#);
        assert_eq!(serde_json::from_str::<Recipient>(r#"{"type":"on_call_leader"}"#).unwrap(), Recipient::OnCallLeader);
    }

    #[test]
    fn recipients_round_trip_as_tagged_json() {
        let json = serde_json::to_string(&Recipient::Role { role: Role::Dsl }).unwrap();
        assert_eq!(json, r#"{"type":"role","role":"dsl"}"#);
        assert_eq!(serde_json::from_str::<Recipient>(r#"{"type":"line_manager"}"#).unwrap(), Recipient::LineManager);
    }

    fn recipient() -> impl Strategy<Value = Recipient> {
        prop_oneof![
            Just(Recipient::Worker),
            Just(Recipient::LineManager),
            Just(Recipient::OnCallLeader),
            proptest::sample::select(Role::ALL.to_vec()).prop_map(|role| Recipient::Role { role }),
            any::<u128>().prop_map(|n| Recipient::User { user_id: Uuid::from_u128(n) }),
        ]
    }

    fn any_step() -> impl Strategy<Value = EscalationStep> {
        let delay = prop_oneof![4 => 0i64..=3_600, 1 => any::<i64>(), 1 => Just(EscalationPlan::MAX_DELAY_SECONDS + 1), 1 => Just(-1i64)];
        let channels = proptest::collection::vec(
            proptest::sample::select(vec![Channel::Push, Channel::Email, Channel::Sms]),
            0..5,
        );
        let instruction =
            prop_oneof![6 => "\\PC{1,60}", 1 => " {0,3}", 1 => Just("i".repeat(501)), 1 => Just("i".repeat(500))];
        (delay, proptest::collection::vec(recipient(), 0..4), channels, instruction).prop_map(
            |(delay_seconds, recipients, channels, instruction)| EscalationStep {
                delay_seconds,
                recipients,
                channels,
                instruction,
            },
        )
    }

    /// The field a plan should be refused for, worked out independently of `parse`; `None` if valid.
    fn expected_refusal(name: &str, steps: &[EscalationStep], repeat: i64) -> Option<&'static str> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Some("name");
        }
        if steps.is_empty() || steps.len() > EscalationPlan::MAX_STEPS {
            return Some("steps");
        }
        if !(1..=EscalationPlan::MAX_DELAY_SECONDS).contains(&repeat) {
            return Some("repeat_every_seconds");
        }
        let delays_ok = steps.iter().all(|s| (0..=EscalationPlan::MAX_DELAY_SECONDS).contains(&s.delay_seconds))
            && steps.windows(2).all(|w| w[0].delay_seconds <= w[1].delay_seconds);
        let steps_ok = steps.iter().all(|s| {
            let instruction = s.instruction.trim();
            !s.recipients.is_empty() && !instruction.is_empty() && instruction.chars().count() <= 500
        });
        if delays_ok && steps_ok { None } else { Some("steps") }
    }

    proptest! {
        #[test]
        fn any_plan_is_accepted_exactly_when_valid_and_parsing_is_idempotent(
            name in prop_oneof![6 => "\\PC{1,30}", 1 => " *", 1 => Just("p".repeat(101))],
            steps in proptest::collection::vec(any_step(), 0..23),
            repeat in prop_oneof![4 => 1i64..=86_400, 1 => any::<i64>(), 1 => Just(0i64)],
        ) {
            let expected = expected_refusal(&name, &steps, repeat);
            match EscalationPlan::parse(&name, steps.clone(), repeat) {
                Ok(plan) => {
                    prop_assert_eq!(expected, None);
                    prop_assert_eq!(plan.steps.len(), steps.len());
                    for step in &plan.steps {
                        prop_assert!(!step.channels.is_empty());
                        prop_assert!(step.channels.iter().enumerate().all(|(i, c)| !step.channels[..i].contains(c)));
                    }
                    let again = EscalationPlan::parse(&plan.name, plan.steps.clone(), plan.repeat_every_seconds).unwrap();
                    prop_assert_eq!(&again, &plan);
                    let json = serde_json::to_string(&plan).unwrap();
                    prop_assert_eq!(serde_json::from_str::<EscalationPlan>(&json).unwrap(), plan);
                }
                Err(e) => prop_assert_eq!(Some(e.field), expected, "{}", e),
            }
        }

        /// Plans an admin could write (steps in order, each with recipients and an instruction) are
        /// always accepted, whatever their channels and repeats.
        #[test]
        fn well_formed_plans_are_accepted(
            mut delays in proptest::collection::vec(0i64..=EscalationPlan::MAX_DELAY_SECONDS, 1..=EscalationPlan::MAX_STEPS),
            recipients in proptest::collection::vec(recipient(), 1..4),
            repeat in 1i64..=EscalationPlan::MAX_DELAY_SECONDS,
        ) {
            delays.sort();
            let steps: Vec<EscalationStep> = delays
                .iter()
                .map(|&delay_seconds| EscalationStep {
                    delay_seconds,
                    recipients: recipients.clone(),
                    channels: vec![Channel::Sms, Channel::Sms],
                    instruction: " Phone the worker ".into(),
                })
                .collect();
            let plan = EscalationPlan::parse(" Evening plan ", steps, repeat).unwrap();
            prop_assert_eq!(plan.name.as_str(), "Evening plan");
            prop_assert_eq!(plan.steps.len(), delays.len());
            prop_assert!(plan.steps.iter().all(|s| s.channels == vec![Channel::Sms] && s.instruction == "Phone the worker"));
        }

        #[test]
        fn channel_names_round_trip(s in prop_oneof![any::<String>(), "push|email|sms|fax"]) {
            match Channel::parse(&s) {
                Some(channel) => prop_assert_eq!(channel.as_str(), s.as_str()),
                None => prop_assert!(!["push", "email", "sms"].contains(&s.as_str())),
            }
        }
    }
}
