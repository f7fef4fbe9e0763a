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
    /// The channels this deployment sends on (none for admin commands that do not serve).
    pub channels: crate::notify::Channels,
    /// The live boards streams are watching, one per school.
    pub boards: crate::shared_boards::SharedBoards,
}
