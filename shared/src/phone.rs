use crate::FieldError;

/// A mobile phone number for text messages, kept in international (E.164) form: `+` and 8 to 15
/// digits. People type numbers with spaces, dashes and brackets, and in the UK with a leading 0; both
/// are accepted and normalised, so the SMS provider always gets one spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        let invalid = |why: &str| FieldError::new("phone", format!("`{trimmed}` is not a phone number: {why}"));
        if trimmed.is_empty() {
            return Err(FieldError::new("phone", "a phone number is required"));
        }
        let mut digits = String::with_capacity(trimmed.len());
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => {}
                ' ' | '-' | '(' | ')' | '.' => {}
                _ => return Err(invalid("use only digits, spaces, dashes, brackets and a leading +")),
            }
        }
        let international = if trimmed.starts_with('+') {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_string()
        } else if let Some(national) = digits.strip_prefix('0') {
            // A UK national number (07700 900123): the schools this serves are in the UK.
            format!("44{national}")
        } else {
            return Err(invalid("start with + and the country code, or 0 for a UK number"));
        };
        if international.starts_with('0') {
            return Err(invalid("a country code never starts with 0"));
        }
        if !(8..=15).contains(&international.len()) {
            return Err(invalid("an international number has 8 to 15 digits"));
        }
        Ok(Self(format!("+{international}")))
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_common_spellings() {
        for (raw, want) in [
            ("+44 7700 900123", "+447700900123"),
            ("07700 900123", "+447700900123"),
            ("(07700) 900-123", "+447700900123"),
            ("0044 7700 900123", "+447700900123"),
            ("+1 (415) 555-0100", "+14155550100"),
            ("  +353.87.123.4567 ", "+353871234567"),
        ] {
            assert_eq!(PhoneNumber::parse(raw).unwrap().as_ref(), want, "{raw}");
        }
    }

    #[test]
    fn rejects_what_cannot_be_texted() {
        for bad in ["", "  ", "7700900123", "+44 7700 9001x3", "+0 1234 5678", "+44 123", "+1234567890123456", "++44"] {
            let err = PhoneNumber::parse(bad).unwrap_err();
            assert_eq!(err.field, "phone", "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_parsed_numbers_round_trip(s in prop_oneof!["\\PC{0,30}", "[0-9 +()._-]{0,24}", any::<String>()]) {
            match PhoneNumber::parse(&s) {
                Ok(phone) => {
                    let digits = &phone.as_ref()[1..];
                    prop_assert!(phone.as_ref().starts_with('+'));
                    prop_assert!(digits.chars().all(|c| c.is_ascii_digit()) && (8..=15).contains(&digits.len()));
                    prop_assert_eq!(PhoneNumber::parse(phone.as_ref()).unwrap(), phone);
                }
                Err(e) => prop_assert_eq!(e.field, "phone"),
            }
        }

        #[test]
        fn uk_numbers_in_any_spelling_normalise_alike(national in "7[0-9]{9}") {
            let want = format!("+44{national}");
            let (a, b) = national.split_at(4);
            for spelling in [format!("0{national}"), format!("+44 {a} {b}"), format!("0044-{a}-{b}"), format!("(0{a}) {b}")] {
                prop_assert_eq!(PhoneNumber::parse(&spelling).unwrap().to_string(), want.clone());
            }
        }
    }
}
