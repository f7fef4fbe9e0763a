use crate::FieldError;

/// The pupil by the school's own reference (for example an admission number): never a child's name,
/// which must not travel to a phone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PupilReference(String);

impl PupilReference {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(FieldError::new("pupil_reference", "the pupil reference is empty"));
        }
        if value.len() > 32 {
            return Err(FieldError::new("pupil_reference", "the pupil reference is longer than 32 characters"));
        }
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_')) {
            return Err(FieldError::new(
                "pupil_reference",
                "use the school's reference (letters, digits, - / _), not the child's name",
            ));
        }
        if !value.chars().any(|c| c.is_ascii_digit()) {
            return Err(FieldError::new(
                "pupil_reference",
                "a pupil reference contains at least one digit; names are not allowed",
            ));
        }
        Ok(Self(value.to_string()))
    }
}

impl AsRef<str> for PupilReference {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_admission_numbers_and_rejects_names() {
        assert_eq!(PupilReference::parse(" ADM-2024/017 ").unwrap().as_ref(), "ADM-2024/017");
        assert!(PupilReference::parse("").is_err());
        assert!(PupilReference::parse("Jamie Smith").is_err());
        assert!(PupilReference::parse("Jamie").is_err());
        assert!(PupilReference::parse(&"1".repeat(33)).is_err());
    }

    proptest! {
        #[test]
        fn never_panics_and_names_its_field(s in prop_oneof!["\\PC{0,64}", any::<String>()]) {
            match PupilReference::parse(&s) {
                Ok(r) => {
                    prop_assert_eq!(r.as_ref(), s.trim());
                    prop_assert_eq!(PupilReference::parse(r.as_ref()).unwrap(), r);
                }
                Err(e) => prop_assert_eq!(e.field, "pupil_reference"),
            }
        }

        #[test]
        fn school_references_round_trip(r in "[A-Za-z/_-]{0,10}[0-9][A-Za-z0-9/_-]{0,21}", pad in " {0,3}") {
            let parsed = PupilReference::parse(&format!("{pad}{r}{pad}")).unwrap();
            prop_assert_eq!(parsed.as_ref(), r.as_str());
        }

        /// A child's name (letters and spaces, no digit) is never accepted as a reference.
        #[test]
        fn names_are_refused(name in "[A-Z][a-z]{1,12}( [A-Z][a-z]{1,12})?") {
            prop_assert_eq!(PupilReference::parse(&name).unwrap_err().field, "pupil_reference");
        }
    }
}
