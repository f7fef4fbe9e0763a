use serde::{Deserialize, Serialize};

use crate::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw.trim() {
            "low" => Ok(RiskLevel::Low),
            "medium" => Ok(RiskLevel::Medium),
            "high" => Ok(RiskLevel::High),
            other => {
                Err(FieldError::new("risk_level", format!("unknown risk level `{other}`; use low, medium or high")))
            }
        }
    }
}

/// The factors the lone-working policy asks to be assessed before a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiskFactor {
    EnvironmentAndLocation,
    NatureOfTask,
    IndividualsAndHistory,
    PreviousIncidents,
    RiskOfAllegation,
    Animals,
    Other,
}

impl RiskFactor {
    pub const ALL: [RiskFactor; 7] = [
        RiskFactor::EnvironmentAndLocation,
        RiskFactor::NatureOfTask,
        RiskFactor::IndividualsAndHistory,
        RiskFactor::PreviousIncidents,
        RiskFactor::RiskOfAllegation,
        RiskFactor::Animals,
        RiskFactor::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RiskFactor::EnvironmentAndLocation => "Environment and location",
            RiskFactor::NatureOfTask => "Nature of the task",
            RiskFactor::IndividualsAndHistory => "The individuals and any history",
            RiskFactor::PreviousIncidents => "Previous incidents",
            RiskFactor::RiskOfAllegation => "Risk of allegation",
            RiskFactor::Animals => "Animals",
            RiskFactor::Other => "Other",
        }
    }
}

/// One factor's rating and the assessor's notes on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskRating {
    pub factor: RiskFactor,
    pub level: RiskLevel,
    #[serde(default)]
    pub notes: String,
}

/// A complete risk assessment: every factor rated once, and an overall level no lower than any factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskAssessment {
    pub factors: Vec<RiskRating>,
    pub overall: RiskLevel,
}

impl RiskAssessment {
    pub const MAX_NOTES: usize = 2_000;

    pub fn parse(mut factors: Vec<RiskRating>, overall: RiskLevel) -> Result<Self, FieldError> {
        factors.sort_by_key(|r| r.factor);
        for pair in factors.windows(2) {
            if pair[0].factor == pair[1].factor {
                return Err(FieldError::new(
                    "risk_assessment.factors",
                    format!("`{}` is rated more than once", pair[0].factor.label()),
                ));
            }
        }
        if let Some(missing) = RiskFactor::ALL.into_iter().find(|f| !factors.iter().any(|r| r.factor == *f)) {
            return Err(FieldError::new(
                "risk_assessment.factors",
                format!("`{}` is not rated; every factor needs a rating", missing.label()),
            ));
        }
        if let Some(long) = factors.iter().find(|r| r.notes.chars().count() > Self::MAX_NOTES) {
            return Err(FieldError::new(
                "risk_assessment.factors",
                format!("the notes on `{}` are longer than {} characters", long.factor.label(), Self::MAX_NOTES),
            ));
        }
        let highest = factors.iter().map(|r| r.level).max().unwrap_or(RiskLevel::Low);
        if overall < highest {
            return Err(FieldError::new(
                "risk_assessment.overall",
                format!(
                    "the overall level ({}) cannot be lower than the highest factor ({})",
                    overall.as_str(),
                    highest.as_str()
                ),
            ));
        }
        Ok(Self { factors, overall })
    }

    /// A low-risk assessment with every factor rated low; used for demo data and tests.
    pub fn all_low() -> Self {
        let factors = RiskFactor::ALL
            .into_iter()
            .map(|factor| RiskRating { factor, level: RiskLevel::Low, notes: String::new() })
            .collect();
        Self { factors, overall: RiskLevel::Low }
    }

    pub fn with_overall(level: RiskLevel) -> Self {
        let mut assessment = Self::all_low();
        assessment.factors[0].level = level;
        assessment.overall = level;
        assessment
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LEVELS: [RiskLevel; 3] = [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High];

    fn rating() -> impl Strategy<Value = RiskRating> {
        let notes = prop_oneof![8 => "\\PC{0,40}", 1 => Just("n".repeat(RiskAssessment::MAX_NOTES)), 1 => Just("n".repeat(RiskAssessment::MAX_NOTES + 1))];
        (proptest::sample::select(RiskFactor::ALL.to_vec()), proptest::sample::select(LEVELS.to_vec()), notes)
            .prop_map(|(factor, level, notes)| RiskRating { factor, level, notes })
    }

    /// Every factor once, in any order, at any level.
    fn complete() -> impl Strategy<Value = Vec<RiskRating>> {
        let levels = proptest::collection::vec(proptest::sample::select(LEVELS.to_vec()), RiskFactor::ALL.len());
        (levels, "\\PC{0,20}").prop_flat_map(|(levels, notes)| {
            let ratings: Vec<RiskRating> = RiskFactor::ALL
                .into_iter()
                .zip(levels)
                .map(|(factor, level)| RiskRating { factor, level, notes: notes.clone() })
                .collect();
            Just(ratings).prop_shuffle()
        })
    }

    #[test]
    fn complete_assessment_parses() {
        let a = RiskAssessment::with_overall(RiskLevel::Medium);
        assert_eq!(RiskAssessment::parse(a.factors.clone(), RiskLevel::High).unwrap().overall, RiskLevel::High);
    }

    #[test]
    fn overall_below_a_factor_is_rejected() {
        let a = RiskAssessment::with_overall(RiskLevel::High);
        let err = RiskAssessment::parse(a.factors, RiskLevel::Low).unwrap_err();
        assert_eq!(err.field, "risk_assessment.overall");
    }

    #[test]
    fn missing_and_duplicate_factors_are_rejected() {
        let mut factors = RiskAssessment::all_low().factors;
        factors.pop();
        assert!(RiskAssessment::parse(factors.clone(), RiskLevel::Low).unwrap_err().message.contains("Other"));
        factors.push(factors[0].clone());
        assert!(RiskAssessment::parse(factors, RiskLevel::Low).unwrap_err().message.contains("more than once"));
    }

    proptest! {
        #[test]
        fn risk_levels_parse_by_name_or_name_the_field(s in prop_oneof![any::<String>(), " ?(low|medium|high|severe) ?"]) {
            match RiskLevel::parse(&s) {
                Ok(level) => prop_assert_eq!(level.as_str(), s.trim()),
                Err(e) => prop_assert_eq!(e.field, "risk_level"),
            }
        }

        /// Any list of ratings: accepted exactly when every factor is rated once with notes of allowed
        /// length and the overall level is at least the highest factor; refusals name the field.
        #[test]
        fn any_ratings_are_accepted_exactly_when_complete(
            factors in prop_oneof![proptest::collection::vec(rating(), 0..10), complete()],
            overall in proptest::sample::select(LEVELS.to_vec()),
        ) {
            let each_once = RiskFactor::ALL.iter().all(|f| factors.iter().filter(|r| r.factor == *f).count() == 1)
                && factors.len() == RiskFactor::ALL.len();
            let notes_fit = factors.iter().all(|r| r.notes.chars().count() <= RiskAssessment::MAX_NOTES);
            let highest = factors.iter().map(|r| r.level).max().unwrap_or(RiskLevel::Low);
            match RiskAssessment::parse(factors.clone(), overall) {
                Ok(assessment) => {
                    prop_assert!(each_once && notes_fit && overall >= highest);
                    prop_assert_eq!(assessment.overall, overall);
                    let again = RiskAssessment::parse(assessment.factors.clone(), assessment.overall).unwrap();
                    prop_assert_eq!(&again, &assessment);
                    let json = serde_json::to_string(&assessment).unwrap();
                    prop_assert_eq!(serde_json::from_str::<RiskAssessment>(&json).unwrap(), assessment);
                }
                Err(e) => {
                    prop_assert!(!(each_once && notes_fit && overall >= highest), "refused a valid assessment: {}", e);
                    let field = if each_once && notes_fit { "risk_assessment.overall" } else { "risk_assessment.factors" };
                    prop_assert_eq!(e.field, field);
                }
            }
        }
    }
}
