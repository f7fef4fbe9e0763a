use serde::{Deserialize, Serialize};

use crate::FieldError;

/// What kind of lone working a session is. Only home visits have a sub-kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    HomeVisit(HomeVisitKind),
    OffsiteMeeting,
    OnSiteAlone,
    Travel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HomeVisitKind {
    SafeAndWell,
    Procedural,
    Education,
    Other,
}

impl HomeVisitKind {
    pub const ALL: [HomeVisitKind; 4] =
        [HomeVisitKind::SafeAndWell, HomeVisitKind::Procedural, HomeVisitKind::Education, HomeVisitKind::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            HomeVisitKind::SafeAndWell => "safe_and_well",
            HomeVisitKind::Procedural => "procedural",
            HomeVisitKind::Education => "education",
            HomeVisitKind::Other => "other",
        }
    }
}

impl SessionKind {
    pub const KINDS: [&'static str; 4] = ["home_visit", "offsite_meeting", "on_site_alone", "travel"];

    /// From the wire pair `kind` + `sub_kind`; a home visit needs a sub-kind and nothing else takes one.
    pub fn parse(kind: &str, sub_kind: Option<&str>) -> Result<Self, FieldError> {
        let sub_kind = sub_kind.map(str::trim).filter(|s| !s.is_empty());
        let no_sub_kind = |k: SessionKind| match sub_kind {
            None => Ok(k),
            Some(s) => Err(FieldError::new("sub_kind", format!("`{s}` is a home-visit sub-kind; a {kind} has none"))),
        };
        match kind.trim() {
            "home_visit" => {
                let Some(sub) = sub_kind else {
                    return Err(FieldError::new(
                        "sub_kind",
                        "a home visit needs a sub-kind: safe_and_well, procedural, education or other",
                    ));
                };
                HomeVisitKind::ALL.into_iter().find(|k| k.as_str() == sub).map(SessionKind::HomeVisit).ok_or_else(
                    || {
                        FieldError::new(
                            "sub_kind",
                            format!(
                                "unknown home-visit sub-kind `{sub}`; use safe_and_well, procedural, education or other"
                            ),
                        )
                    },
                )
            }
            "offsite_meeting" => no_sub_kind(SessionKind::OffsiteMeeting),
            "on_site_alone" => no_sub_kind(SessionKind::OnSiteAlone),
            "travel" => no_sub_kind(SessionKind::Travel),
            other => Err(FieldError::new(
                "kind",
                format!("unknown session kind `{other}`; use home_visit, offsite_meeting, on_site_alone or travel"),
            )),
        }
    }

    pub fn kind_str(self) -> &'static str {
        match self {
            SessionKind::HomeVisit(_) => "home_visit",
            SessionKind::OffsiteMeeting => "offsite_meeting",
            SessionKind::OnSiteAlone => "on_site_alone",
            SessionKind::Travel => "travel",
        }
    }

    pub fn sub_kind_str(self) -> Option<&'static str> {
        match self {
            SessionKind::HomeVisit(k) => Some(k.as_str()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_every_kind() {
        for kind in SessionKind::KINDS {
            let subs: Vec<Option<&str>> = if kind == "home_visit" {
                HomeVisitKind::ALL.iter().map(|k| Some(k.as_str())).collect()
            } else {
                vec![None]
            };
            for sub in subs {
                let parsed = SessionKind::parse(kind, sub).unwrap();
                assert_eq!(parsed.kind_str(), kind);
                assert_eq!(parsed.sub_kind_str(), sub);
            }
        }
    }

    #[test]
    fn names_the_wrong_field() {
        assert_eq!(SessionKind::parse("home_visit", None).unwrap_err().field, "sub_kind");
        assert_eq!(SessionKind::parse("home_visit", Some("tea")).unwrap_err().field, "sub_kind");
        assert_eq!(SessionKind::parse("travel", Some("procedural")).unwrap_err().field, "sub_kind");
        assert_eq!(SessionKind::parse("picnic", None).unwrap_err().field, "kind");
    }

    proptest! {
        #[test]
        fn any_pair_parses_or_names_kind_or_sub_kind(
            kind in prop_oneof![any::<String>(), proptest::sample::select(SessionKind::KINDS.to_vec()).prop_map(String::from)],
            sub in proptest::option::of(prop_oneof![any::<String>(), "safe_and_well|procedural|education|other| "]),
        ) {
            match SessionKind::parse(&kind, sub.as_deref()) {
                Ok(parsed) => {
                    prop_assert_eq!(parsed.kind_str(), kind.trim());
                    prop_assert_eq!(SessionKind::parse(parsed.kind_str(), parsed.sub_kind_str()).unwrap(), parsed);
                }
                Err(e) => prop_assert!(["kind", "sub_kind"].contains(&e.field), "{}", e),
            }
        }
    }
}
