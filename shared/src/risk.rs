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
}
