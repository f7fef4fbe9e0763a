//! Login rate limit: after too many failed sign-ins for one account, or from one address, further
//! attempts are refused for a while with a message that says so.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<DateTime<Utc>>>>,
    window: Duration,
    per_account: usize,
    per_address: usize,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self { failures: Mutex::new(HashMap::new()), window: Duration::minutes(15), per_account: 5, per_address: 30 }
    }
}

impl LoginLimiter {
    /// `Err(seconds until the oldest failure leaves the window)` when the account or address is locked out.
    pub fn check(&self, email: &str, address: &str, now: DateTime<Utc>) -> Result<(), u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for (key, limit) in [(account_key(email), self.per_account), (address_key(address), self.per_address)] {
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| *t > now - self.window);
                if times.len() >= limit {
                    let wait = (times[0] + self.window - now).num_seconds().max(1);
                    return Err(wait as u64);
                }
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, email: &str, address: &str, now: DateTime<Utc>) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            // Bound memory under a flood of made-up accounts.
            failures.retain(|_, times| times.last().is_some_and(|t| *t > now - self.window));
        }
        failures.entry(account_key(email)).or_default().push(now);
        failures.entry(address_key(address)).or_default().push(now);
    }

    pub fn record_success(&self, email: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&account_key(email));
    }
}

fn account_key(email: &str) -> String {
    format!("account:{}", email.trim().to_lowercase())
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_failures_and_unlocks_after_the_window() {
        let limiter = LoginLimiter::default();
        let now = Utc::now();
        for _ in 0..5 {
            assert!(limiter.check("a@b.com", "1.2.3.4", now).is_ok());
            limiter.record_failure("A@b.com", "1.2.3.4", now);
        }
        assert!(limiter.check("a@b.com", "5.6.7.8", now).is_err());
        assert!(limiter.check("other@b.com", "1.2.3.4", now).is_ok());
        assert!(limiter.check("a@b.com", "1.2.3.4", now + Duration::minutes(16)).is_ok());
    }

    #[test]
    fn success_clears_the_account() {
        let limiter = LoginLimiter::default();
        let now = Utc::now();
        for _ in 0..5 {
            limiter.record_failure("a@b.com", "1.2.3.4", now);
        }
        limiter.record_success("a@b.com");
        assert!(limiter.check("a@b.com", "9.9.9.9", now).is_ok());
    }
}
