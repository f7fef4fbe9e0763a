//! Settings from flags or the environment (`homeward --help` lists them all).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, global = true, env = "HOMEWARD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Database: `sqlite://PATH` or `postgres://USER@HOST/DB`. Default: a SQLite file in the data dir.
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where the SQLite file and generated keys are kept.
    #[arg(long, global = true, env = "HOMEWARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// How long a sign-in lasts before the user must sign in again.
    #[arg(long, global = true, env = "HOMEWARD_TOKEN_TTL_HOURS", default_value_t = 12)]
    pub token_ttl_hours: i64,
    /// How long a leader may own an alert without resolving it before escalation resumes (seconds).
    #[arg(long, global = true, env = "HOMEWARD_OWNERSHIP_TIMEOUT_SECS", default_value_t = 600)]
    pub ownership_timeout_secs: i64,
    /// Longest wait for a push service to answer one message (seconds).
    #[arg(long, global = true, env = "HOMEWARD_PUSH_TIMEOUT_SECS", default_value_t = 10)]
    pub push_timeout_secs: u64,
    /// The contact put in every VAPID signature, so push services can reach the operator.
    #[arg(long, global = true, env = "HOMEWARD_VAPID_SUBJECT", default_value = "mailto:safety@homeward.invalid")]
    pub vapid_subject: String,
    /// How often the scheduler looks for timers written by other server processes (milliseconds).
    #[arg(long, global = true, env = "HOMEWARD_POLL_MS", default_value_t = 250)]
    pub poll_ms: u64,
    /// A live visit with no location ping for this long raises a lost-signal alert (seconds).
    #[arg(long, global = true, env = "HOMEWARD_SIGNAL_LOST_SECS", default_value_t = 600)]
    pub signal_lost_secs: i64,
    /// After prompting a worker who left the visit's geofence, tell the line manager if the visit has
    /// still not ended this long later (seconds).
    #[arg(long, global = true, env = "HOMEWARD_GEOFENCE_FOLLOW_UP_SECS", default_value_t = 120)]
    pub geofence_follow_up_secs: i64,
    /// The web client's build (index.html, pkg/, sw.js, the manifest), served at `/`. A relative path is
    /// taken from the working directory; `./scripts/run` builds it into `mobile/dist`.
    #[arg(long, global = true, env = "HOMEWARD_WEB_DIR", default_value = "mobile/dist")]
    pub web_dir: PathBuf,
    /// Map tiles for the leaders' live board: a URL with `{z}`, `{x}` and `{y}`. Its origin is allowed
    /// for images by the web client's Content-Security-Policy. The board's list and markers work without it.
    #[arg(
        long,
        global = true,
        env = "HOMEWARD_MAP_TILE_URL",
        default_value = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    )]
    pub map_tile_url: String,
    /// Largest request body accepted, in kilobytes.
    #[arg(long, global = true, env = "HOMEWARD_MAX_BODY_KB", default_value_t = 256)]
    pub max_body_kb: usize,
}

impl Settings {
    /// The database URL to use, creating the data directory for the SQLite default.
    pub fn database_url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(format!("sqlite://{}?mode=rwc", self.data_dir.join("homeward.db").display()))
    }
}
