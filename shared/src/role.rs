use serde::{Deserialize, Serialize};

use crate::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Staff,
    Leader,
    Dsl,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Staff, Role::Leader, Role::Dsl, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Leader => "leader",
            Role::Dsl => "dsl",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Role::ALL.into_iter().find(|r| r.as_str() == raw.trim().to_lowercase()).ok_or_else(|| {
            FieldError::new("roles", format!("unknown role `{}`; use staff, leader, dsl or admin", raw.trim()))
        })
    }

    /// A list such as `staff;leader` or `staff,leader` (CSV cells use `;`).
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, FieldError> {
        let mut roles: Vec<Role> =
            raw.split([',', ';', '|']).filter(|s| !s.trim().is_empty()).map(Role::parse).collect::<Result<_, _>>()?;
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            return Err(FieldError::new("roles", "at least one role is required"));
        }
        Ok(roles)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_lists_and_rejects_unknown() {
        assert_eq!(Role::parse_list("leader; staff;staff").unwrap(), vec![Role::Staff, Role::Leader]);
        assert!(Role::parse_list("").is_err());
        assert!(Role::parse_list("staff;boss").unwrap_err().message.contains("boss"));
    }

    proptest! {
        #[test]
        fn any_text_is_a_role_or_a_refusal_naming_roles(s in prop_oneof![any::<String>(), "(?i)(staff|leader|dsl|admin|boss)[ ,;|]{0,2}"]) {
            match Role::parse(&s) {
                Ok(role) => {
                    prop_assert_eq!(role.as_str(), s.trim().to_lowercase());
                    prop_assert_eq!(Role::parse(role.as_str()).unwrap(), role);
                }
                Err(e) => prop_assert_eq!(e.field, "roles"),
            }
            match Role::parse_list(&s) {
                Ok(roles) => {
                    prop_assert!(!roles.is_empty());
                    prop_assert!(roles.windows(2).all(|w| w[0] < w[1]), "sorted without repeats: {:?}", roles);
                }
                Err(e) => prop_assert_eq!(e.field, "roles"),
            }
        }

        #[test]
        fn role_lists_round_trip(roles in proptest::collection::vec(proptest::sample::select(Role::ALL.to_vec()), 1..8), sep in "[,;|] ?") {
            let raw = roles.iter().map(|r| r.as_str().to_uppercase()).collect::<Vec<_>>().join(&sep);
            let mut want = roles.clone();
            want.sort();
            want.dedup();
            prop_assert_eq!(Role::parse_list(&raw).unwrap(), want);
        }
    }
}
