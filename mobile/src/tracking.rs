//! Location and battery while a visit is under way: a position ping every 60 s (every 10 s during an
//! alarm), queued like every other event. No visit, no location.

use std::time::Duration;

use dioxus::prelude::*;
use homeward_shared::Timestamp;
use homeward_shared::api::LocationPing;
use homeward_shared::session::SessionStatus;

use crate::platform::{sleep, with_timeout};
use crate::state::{Action, AppState, Reading};

const PING_EVERY: i64 = 60;
const PING_EVERY_IN_ALARM: i64 = 10;
const BATTERY_EVERY: i64 = 60;
const LOOK_EVERY: Duration = Duration::from_secs(2);
const FIX_TIMEOUT: Duration = Duration::from_secs(20);

pub const LOCATION_OFF: &str = "used only during a visit";

/// Seconds between pings for these live sessions.
pub fn ping_period(statuses: impl IntoIterator<Item = SessionStatus>) -> i64 {
    if statuses.into_iter().any(|s| s == SessionStatus::Alarm) { PING_EVERY_IN_ALARM } else { PING_EVERY }
}

fn due(last: Option<Timestamp>, now: Timestamp, every: i64) -> bool {
    last.is_none_or(|last| (now - last).num_seconds() >= every)
}

/// Start the tracker. Call once, in the root component.
pub fn use_tracking(state: AppState) {
    use_future(move || async move {
        let mut state = state;
        let mut last_fix: Option<Timestamp> = None;
        let mut last_battery: Option<Timestamp> = None;
        loop {
            sleep(LOOK_EVERY).await;
            if state.auth.peek().is_none() {
                continue;
            }
            let platform = state.platform();
            let now = chrono::Utc::now();
            if due(last_battery, now, BATTERY_EVERY) {
                last_battery = Some(now);
                let reading = match platform.battery.level().await {
                    Ok(level) => Reading::Available(level),
                    Err(why) => Reading::Unavailable(why),
                };
                state.dispatch(Action::Battery(reading));
            }

            let live = state.live_sessions();
            if live.is_empty() {
                last_fix = None;
                if !matches!(*state.location.peek(), Reading::Off(_)) {
                    state.dispatch(Action::Location(Reading::Off(LOCATION_OFF)));
                }
                continue;
            }
            let period = ping_period(live.iter().map(|(_, p)| p.status));
            if !due(last_fix, now, period) {
                continue;
            }
            last_fix = Some(now);
            if matches!(*state.location.peek(), Reading::Off(_)) {
                state.dispatch(Action::Location(Reading::Waiting));
            }
            match with_timeout(FIX_TIMEOUT, platform.location.current()).await {
                Some(Ok(fix)) => {
                    state.dispatch(Action::Location(Reading::Available(fix)));
                    let battery_percent = match &*state.battery.peek() {
                        Reading::Available(level) => Some(level.percent),
                        _ => None,
                    };
                    // Still under way after the wait for a fix?
                    for (session_id, _) in state.live_sessions() {
                        let ping = LocationPing {
                            id: LocationPing::new_id(fix.at),
                            at: fix.at,
                            latitude: fix.coordinates.latitude,
                            longitude: fix.coordinates.longitude,
                            accuracy_m: fix.accuracy_m.min(100_000.0),
                            battery_percent,
                        };
                        state.dispatch(Action::Ping { session_id, ping });
                    }
                }
                Some(Err(why)) => state.dispatch(Action::Location(Reading::Unavailable(why))),
                None => {
                    state.dispatch(Action::Location(Reading::Unavailable("Location: no fix yet (timed out)".into())))
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_speed_up_during_an_alarm() {
        assert_eq!(ping_period([SessionStatus::Active]), 60);
        assert_eq!(ping_period([SessionStatus::Active, SessionStatus::Alarm]), 10);
    }

    #[test]
    fn a_reading_is_due_once_its_period_has_passed() {
        let now = chrono::Utc::now();
        assert!(due(None, now, 60));
        assert!(!due(Some(now - chrono::Duration::seconds(59)), now, 60));
        assert!(due(Some(now - chrono::Duration::seconds(60)), now, 60));
    }
}
