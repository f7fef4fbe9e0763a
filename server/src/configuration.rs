//! Settings from flags or the environment (`homeward --help` lists them all).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, global = true, env = "HOMEWARD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Database: `sqlite://PATH` or `postgres://USER@HOST/DB`. Default: a SQLite file in the data dir.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the SQLite file and generated keys are kept.
    #[arg(long, global = true, env = "HOMEWARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// How long one access token lasts (seconds). The phone renews it with its device sign-in before
    /// it runs out, so a short life costs nothing and limits what a stolen token can do.
    #[arg(long, global = true, env = "HOMEWARD_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: i64,
    /// How long a device stays signed in without being used (days); every renewal starts it again.
    #[arg(long, global = true, env = "HOMEWARD_DEVICE_SIGN_IN_DAYS", default_value_t = 30)]
    pub device_sign_in_days: i64,
    /// Hosts (names or addresses) that push subscriptions may point at although they are not public
    /// HTTPS addresses, comma-separated, e.g. `127.0.0.1` for a local test push service. Never needed in
    /// production: a start with it set warns.
    #[arg(long, global = true, env = "HOMEWARD_PUSH_ALLOW_HOSTS", value_delimiter = ',')]
    pub push_allow_hosts: Vec<String>,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers are believed, as CIDRs
    /// (`127.0.0.1/32,10.0.0.0/8`). Requests from anywhere else are taken to come from their peer.
    #[arg(long, global = true, env = "HOMEWARD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The key that seals the audit log's hash chain, kept outside the database. Default:
    /// `audit.key` in the data directory, made on first start.
    #[arg(long, global = true, env = "HOMEWARD_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,
    /// How long a leader may own an alert without resolving it before escalation resumes (seconds).
    #[arg(long, global = true, env = "HOMEWARD_OWNERSHIP_TIMEOUT_SECS", default_value_t = 600)]
    pub ownership_timeout_secs: i64,
    /// Longest wait for a push service, the SMTP server or the SMS provider to answer one message (seconds).
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
    /// Live boards are sent again at least this often even when no change was heard (seconds): a last
    /// resort, since changes arrive as they commit, from this process and (PostgreSQL) from the others.
    #[arg(long, global = true, env = "HOMEWARD_BOARD_REFRESH_SECS", default_value_t = 15)]
    pub board_refresh_secs: u64,
    /// Largest request body accepted, in kilobytes.
    #[arg(long, global = true, env = "HOMEWARD_MAX_BODY_KB", default_value_t = 256)]
    pub max_body_kb: usize,
    /// Other web origins allowed to call the API from a browser (comma-separated, e.g.
    /// `https://app.school.example`). The web client served by this server is always allowed.
    #[arg(long, global = true, env = "HOMEWARD_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,
    /// The address people open the app at, for links in e-mails and text messages (e.g.
    /// `https://homeward.example.sch.uk`). Default: `http://` and the bind address.
    #[arg(long, global = true, env = "HOMEWARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The safety-net checks: before a visit, tell the worker and the admins if a step of its plan would
    /// reach nobody; once a day, record which leaders no channel can reach.
    #[arg(long, global = true, env = "HOMEWARD_REACH_CHECKS", default_value_t = true, action = clap::ArgAction::Set)]
    pub reach_checks: bool,
    #[command(flatten)]
    pub email: EmailSettings,
    #[command(flatten)]
    pub sms: SmsSettings,
    #[command(flatten)]
    pub secret_files: SecretFiles,
}

/// The secrets read from files instead (container and systemd credentials, mounted secrets), so they
/// need not sit in the environment. [`Settings::resolve_secret_files`] reads them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SecretFiles {
    /// A file holding the database URL (instead of `DATABASE_URL`); a trailing newline is ignored.
    #[arg(long, global = true, env = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
    /// A file holding the SMTP URL (instead of `HOMEWARD_SMTP_URL`).
    #[arg(long, global = true, env = "HOMEWARD_SMTP_URL_FILE")]
    pub smtp_url_file: Option<PathBuf>,
    /// A file holding the SMS provider's password (instead of `HOMEWARD_SMS_PASSWORD`).
    #[arg(long, global = true, env = "HOMEWARD_SMS_PASSWORD_FILE")]
    pub sms_password_file: Option<PathBuf>,
    /// A file holding the SMS provider's bearer token (instead of `HOMEWARD_SMS_BEARER_TOKEN`).
    #[arg(long, global = true, env = "HOMEWARD_SMS_BEARER_TOKEN_FILE")]
    pub sms_bearer_token_file: Option<PathBuf>,
    /// A file holding the SMS extra fields (instead of `HOMEWARD_SMS_EXTRA_FIELDS`).
    #[arg(long, global = true, env = "HOMEWARD_SMS_EXTRA_FIELDS_FILE")]
    pub sms_extra_fields_file: Option<PathBuf>,
}

/// E-mail alerts over SMTP; off unless `HOMEWARD_SMTP_URL` is set.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EmailSettings {
    /// The SMTP server: `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`
    /// (TLS), or `smtp://host:25` (no TLS: only for a relay on the same machine or network).
    #[arg(long, global = true, env = "HOMEWARD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of alert e-mails, e.g. `Homeward <alerts@example.sch.uk>`.
    #[arg(long, global = true, env = "HOMEWARD_SMTP_FROM")]
    pub smtp_from: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SmsFormat {
    /// A JSON object body.
    #[default]
    Json,
    /// An `application/x-www-form-urlencoded` body.
    Form,
}

/// Text-message alerts through an HTTP SMS provider; off unless `HOMEWARD_SMS_URL` is set. The request
/// is a POST of `{to, body, from}` (field names configurable) plus any extra fields, so most providers
/// fit without code: e.g. Twilio is `form` with `To`, `Body`, `From` and basic auth.
#[derive(Debug, Clone, clap::Args)]
pub struct SmsSettings {
    /// The provider's endpoint for sending one message.
    #[arg(long, global = true, env = "HOMEWARD_SMS_URL")]
    pub sms_url: Option<String>,
    #[arg(long, global = true, env = "HOMEWARD_SMS_FORMAT", value_enum, default_value_t = SmsFormat::Json)]
    pub sms_format: SmsFormat,
    /// The body field that takes the recipient's number.
    #[arg(long, global = true, env = "HOMEWARD_SMS_TO_FIELD", default_value = "to")]
    pub sms_to_field: String,
    /// The body field that takes the message text.
    #[arg(long, global = true, env = "HOMEWARD_SMS_BODY_FIELD", default_value = "body")]
    pub sms_body_field: String,
    /// The body field that takes the sender (number or name); sent only when `HOMEWARD_SMS_FROM` is set.
    #[arg(long, global = true, env = "HOMEWARD_SMS_FROM_FIELD", default_value = "from")]
    pub sms_from_field: String,
    #[arg(long, global = true, env = "HOMEWARD_SMS_FROM")]
    pub sms_from: Option<String>,
    /// Basic auth user name (with `HOMEWARD_SMS_PASSWORD`).
    #[arg(long, global = true, env = "HOMEWARD_SMS_USERNAME")]
    pub sms_username: Option<String>,
    #[arg(long, global = true, env = "HOMEWARD_SMS_PASSWORD", hide_env_values = true)]
    pub sms_password: Option<String>,
    /// Sent as `Authorization: Bearer <token>`.
    #[arg(long, global = true, env = "HOMEWARD_SMS_BEARER_TOKEN", hide_env_values = true)]
    pub sms_bearer_token: Option<String>,
    /// Further fixed fields for the body, URL-encoded: `api_key=abc&channel=sms`.
    #[arg(long, global = true, env = "HOMEWARD_SMS_EXTRA_FIELDS", hide_env_values = true)]
    pub sms_extra_fields: Option<String>,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            sms_url: None,
            sms_format: SmsFormat::Json,
            sms_to_field: "to".into(),
            sms_body_field: "body".into(),
            sms_from_field: "from".into(),
            sms_from: None,
            sms_username: None,
            sms_password: None,
            sms_bearer_token: None,
            sms_extra_fields: None,
        }
    }
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
    /// Where links in e-mails and text messages point, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.bind),
        }
    }

    /// Read each secret given as a file (`DATABASE_URL_FILE`, `HOMEWARD_SMTP_URL_FILE`, ...) into its
    /// setting. A secret given both ways, or a file that cannot be read, is an error naming both.
    pub fn resolve_secret_files(&mut self) -> anyhow::Result<()> {
        let files = std::mem::take(&mut self.secret_files);
        read_secret("DATABASE_URL", "--database-url", &mut self.database_url, files.database_url_file)?;
        read_secret("HOMEWARD_SMTP_URL", "--smtp-url", &mut self.email.smtp_url, files.smtp_url_file)?;
        read_secret("HOMEWARD_SMS_PASSWORD", "--sms-password", &mut self.sms.sms_password, files.sms_password_file)?;
        read_secret(
            "HOMEWARD_SMS_BEARER_TOKEN",
            "--sms-bearer-token",
            &mut self.sms.sms_bearer_token,
            files.sms_bearer_token_file,
        )?;
        read_secret(
            "HOMEWARD_SMS_EXTRA_FIELDS",
            "--sms-extra-fields",
            &mut self.sms.sms_extra_fields,
            files.sms_extra_fields_file,
        )?;
        Ok(())
    }

    /// The database URL to use, creating the data directory for the SQLite default.
    pub fn database_url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(format!("sqlite://{}?mode=rwc", self.data_dir.join("homeward.db").display()))
    }
}

/// Put the content of `file` (its trailing newline cut) into `value`, the setting `name` / `flag`.
fn read_secret(name: &str, flag: &str, value: &mut Option<String>, file: Option<PathBuf>) -> anyhow::Result<()> {
    let Some(file) = file else { return Ok(()) };
    anyhow::ensure!(
        value.is_none(),
        "{name} and {name}_FILE are both set (or {flag} and {flag}-file): give the secret one way only"
    );
    let text = std::fs::read_to_string(&file)
        .map_err(|e| anyhow::anyhow!("{name}_FILE: cannot read {}: {e}", file.display()))?;
    let secret = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    anyhow::ensure!(!secret.is_empty(), "{name}_FILE: {} is empty", file.display());
    *value = Some(secret.to_string());
    Ok(())
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

#[cfg(test)]
mod secret_file_tests {
    use std::path::PathBuf;

    use clap::Parser;

    use super::read_secret;
    use crate::cli::Cli;

    fn file_with(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("homeward-secret-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, text).expect("write the secret file");
        path
    }

    #[test]
    fn a_secret_file_is_read_without_its_trailing_newline() {
        for (text, expected) in
            [("s3cret\n", "s3cret"), ("s3cret\r\n", "s3cret"), ("s3cret", "s3cret"), ("a b\n\n", "a b\n")]
        {
            let path = file_with(text);
            let mut value = None;
            read_secret("DATABASE_URL", "--database-url", &mut value, Some(path.clone())).expect("read");
            assert_eq!(value.as_deref(), Some(expected), "{text:?}");
            let _ = std::fs::remove_file(path);
        }
        let mut untouched = Some("given".to_string());
        read_secret("DATABASE_URL", "--database-url", &mut untouched, None).expect("no file");
        assert_eq!(untouched.as_deref(), Some("given"));
    }

    #[test]
    fn a_secret_given_twice_or_an_unreadable_file_is_refused_by_name() {
        let path = file_with("s3cret\n");
        let mut value = Some("from the environment".to_string());
        let both = read_secret("HOMEWARD_SMS_PASSWORD", "--sms-password", &mut value, Some(path.clone()))
            .expect_err("both set")
            .to_string();
        assert!(both.contains("HOMEWARD_SMS_PASSWORD and HOMEWARD_SMS_PASSWORD_FILE are both set"), "{both}");
        assert!(!both.contains("s3cret") && !both.contains("from the environment"), "no secret in: {both}");
        let _ = std::fs::remove_file(&path);

        let mut value = None;
        let missing = read_secret("HOMEWARD_SMTP_URL", "--smtp-url", &mut value, Some(path.clone()))
            .expect_err("no such file")
            .to_string();
        assert!(
            missing.contains("HOMEWARD_SMTP_URL_FILE") && missing.contains(&path.display().to_string()),
            "{missing}"
        );
        let empty = file_with("\n");
        let refused = read_secret("HOMEWARD_SMTP_URL", "--smtp-url", &mut value, Some(empty.clone()))
            .expect_err("empty")
            .to_string();
        assert!(refused.contains("is empty"), "{refused}");
        let _ = std::fs::remove_file(empty);
    }

    /// Every secret has its `--…-file` flag, and resolving puts each file's content in its setting.
    #[test]
    fn every_secret_can_come_from_a_file() {
        let files: Vec<(&str, PathBuf)> = [
            ("--database-url-file", "sqlite://elsewhere.db\n"),
            ("--smtp-url-file", "smtp://u:mail-pass@127.0.0.1:2525\n"),
            ("--sms-password-file", "sms-pass\n"),
            ("--sms-bearer-token-file", "sms-token\n"),
            ("--sms-extra-fields-file", "api_key=abc\n"),
        ]
        .into_iter()
        .map(|(flag, text)| (flag, file_with(text)))
        .collect();
        let mut args = vec!["homeward".to_string()];
        for (flag, path) in &files {
            args.extend([flag.to_string(), path.display().to_string()]);
        }
        let mut settings = Cli::try_parse_from(&args).expect("the flags parse").settings;
        settings.resolve_secret_files().expect("the files are read");
        assert_eq!(settings.database_url.as_deref(), Some("sqlite://elsewhere.db"));
        assert_eq!(settings.email.smtp_url.as_deref(), Some("smtp://u:mail-pass@127.0.0.1:2525"));
        assert_eq!(settings.sms.sms_password.as_deref(), Some("sms-pass"));
        assert_eq!(settings.sms.sms_bearer_token.as_deref(), Some("sms-token"));
        assert_eq!(settings.sms.sms_extra_fields.as_deref(), Some("api_key=abc"));
        // Resolved once: a second call finds no files left to read.
        settings.resolve_secret_files().expect("nothing left to read");
        for (_, path) in files {
            let _ = std::fs::remove_file(path);
        }
    }
}
