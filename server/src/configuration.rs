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
    /// Largest request body accepted, in kilobytes.
    #[arg(long, global = true, env = "HOMEWARD_MAX_BODY_KB", default_value_t = 256)]
    pub max_body_kb: usize,
    /// Other web origins allowed to call the API from a browser (comma-separated, e.g.
    /// `https://app.school.example`). The web client served by this server is always allowed.
    #[arg(long, global = true, env = "HOMEWARD_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,
}

/// An origin is a scheme, a host and an optional port: nothing after it, not even a slash.
fn parse_origin(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let url = url::Url::parse(raw).map_err(|e| format!("`{raw}` is not an origin: {e}"))?;
    let origin = url.origin();
    if !origin.is_tuple() || !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{raw}` is not an http(s) origin"));
    }
    let serialized = origin.ascii_serialization();
    if serialized != raw {
        return Err(format!("`{raw}` is not an origin: write it as `{serialized}` (scheme, host and port only)"));
    }
    Ok(serialized)
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

#[cfg(test)]
mod tests {
    use super::parse_origin;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(parse_origin("https://app.school.example").as_deref(), Ok("https://app.school.example"));
        assert_eq!(parse_origin(" http://localhost:8081 ").as_deref(), Ok("http://localhost:8081"));
        let with_path = parse_origin("https://app.school.example/").unwrap_err();
        assert!(with_path.contains("write it as `https://app.school.example`"), "{with_path}");
        assert!(parse_origin("app.school.example").is_err());
        assert!(parse_origin("file:///tmp/x").is_err());
    }
}
