use crate::FieldError;

/// A lower-cased e-mail address: one `@`, a non-empty local part and a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim().to_lowercase();
        let invalid = |why: &str| FieldError::new("email", format!("`{}` is not an e-mail address: {why}", raw.trim()));
        if value.is_empty() {
            return Err(FieldError::new("email", "an e-mail address is required"));
        }
        if value.len() > 254 {
            return Err(invalid("longer than 254 characters"));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(invalid("it has no @"));
        };
        if local.is_empty() || domain.contains('@') {
            return Err(invalid("it needs exactly one @ with a name before it"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("it contains spaces"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-')) {
            return Err(invalid("the part after @ is not a domain"));
        }
        Ok(Self(value))
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalises_ordinary_addresses() {
        assert_eq!(Email::parse(" Ada.Lovelace@Example.SCH.uk ").unwrap().as_ref(), "ada.lovelace@example.sch.uk");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "no-at.example.com",
            "@example.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a@b..com",
            "a@-b.com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_valid_ones_round_trip(s in "\\PC{0,80}") {
            match Email::parse(&s) {
                Ok(email) => prop_assert_eq!(Email::parse(email.as_ref()).unwrap(), email),
                Err(e) => prop_assert_eq!(e.field, "email"),
            }
        }

        /// Any text at all, control characters and over-long input included.
        #[test]
        fn arbitrary_text_is_refused_by_field_or_accepted_normalised(s in any::<String>()) {
            match Email::parse(&s) {
                Ok(email) => {
                    prop_assert!(email.as_ref().len() <= 254);
                    prop_assert_eq!(email.as_ref().matches('@').count(), 1);
                    let normal = email.as_ref().trim().to_lowercase();
                    prop_assert_eq!(email.as_ref(), normal.as_str());
                }
                Err(e) => prop_assert_eq!(e.field, "email"),
            }
        }

        #[test]
        fn addresses_with_two_ats_or_none_are_refused(local in "[a-z]{1,10}", domain in "[a-z]{1,10}\\.[a-z]{2,4}") {
            prop_assert_eq!(Email::parse(&format!("{local}{domain}")).unwrap_err().field, "email");
            prop_assert_eq!(Email::parse(&format!("{local}@@{domain}")).unwrap_err().field, "email");
        }

        #[test]
        fn generated_addresses_parse(local in "[a-z0-9._+-]{1,20}", domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}") {
            let raw = format!("{local}@{domain}");
            let parsed = Email::parse(&raw).unwrap();
            prop_assert_eq!(parsed.as_ref(), raw.as_str());
        }
    }
}
