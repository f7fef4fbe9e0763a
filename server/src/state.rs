use std::sync::Arc;

use crate::auth::rate_limit::LoginLimiter;
use crate::clock::Clock;
use crate::configuration::Settings;
use crate::db::Db;

/// What every handler can reach.
pub struct AppState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub login_limiter: LoginLimiter,
    /// The application server key browsers subscribe with (`None` for admin commands that do not serve).
    pub vapid_public_key: Option<String>,
    /// The Web Push channel (`None` for admin commands that do not serve).
    pub push: Option<std::sync::Arc<dyn crate::notify::Channel>>,
}
