//! Black-box tests of the `homeward` command line: the real binary, run as a child process, against a
//! fresh SQLite file in its own directory and against a fresh PostgreSQL database (every case runs on
//! both). The server is reached over HTTP and stopped with SIGTERM/SIGINT like a service manager would.

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, Executor, Row};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_homeward");
/// Settings the binary reads from the environment: cleared so the caller's shell cannot leak in.
const SETTINGS_ENV: [&str; 18] = [
    "HOMEWARD_BIND",
    "DATABASE_URL",
    "DATABASE_URL_FILE",
    "HOMEWARD_SMTP_URL",
    "HOMEWARD_SMTP_URL_FILE",
    "HOMEWARD_SMS_URL",
    "HOMEWARD_SMS_PASSWORD",
    "HOMEWARD_SMS_PASSWORD_FILE",
    "HOMEWARD_SMS_BEARER_TOKEN",
    "HOMEWARD_SMS_BEARER_TOKEN_FILE",
    "HOMEWARD_SMS_EXTRA_FIELDS",
    "HOMEWARD_SMS_EXTRA_FIELDS_FILE",
    "HOMEWARD_DATA_DIR",
    "HOMEWARD_ACCESS_TOKEN_TTL_SECS",
    "HOMEWARD_MAX_BODY_KB",
    "HOMEWARD_ADMIN_PASSWORD",
    "HOMEWARD_USER_PASSWORD",
    "RUST_LOG",
];
const PASSWORD: &str = "a-long-password";
const DEMO_PASSWORD: &str = "demo-password-1";
const DANA: &str = "dana.whitfield@demo.homeward.test";
const DEMO_PEOPLE: [&str; 5] = [
    "morgan.ellery@demo.homeward.test",
    "priya.okafor@demo.homeward.test",
    "tomasz.brennan@demo.homeward.test",
    DANA,
    "sam.adeyemi@demo.homeward.test",
];
const DEMO_ADDRESSES: [&str; 3] =
    ["14 Quayside Row, Harbourside", "3 Lantern Court, Harbourside", "27 Ropewalk Lane, Harbourside"];
/// How long an admin command may take before the test gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Run `fn name(backend: Backend)` as two tests, `name::sqlite` and `name::postgres`.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(super::Backend::Sqlite)
                }
                #[test]
                fn postgres() {
                    super::$name(super::Backend::Postgres)
                }
            }
        )*
    };
}

on_both_databases!(
    create_school_and_add_users,
    bad_users_are_refused_with_a_clear_message,
    import_staff_is_all_or_nothing,
    seed_demo_twice_creates_nothing_new,
    seed_demo_refuses_when_a_demo_email_is_taken,
    serve_demo_signs_in_and_stops_cleanly,
    flags_win_over_the_environment,
    logs_hold_no_secrets_or_childrens_details,
    secrets_can_be_read_from_files,
);

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(future)
}

fn postgres_admin_url() -> String {
    std::env::var("HOMEWARD_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh place for the binary to keep its data: a temp directory (the working directory and the
/// data dir), and on PostgreSQL a database with a random name, dropped again at the end.
struct TestEnv {
    backend: Backend,
    dir: PathBuf,
    /// The database URL as the tests reach it (for SQLite, the default file in the data dir).
    url: String,
    pg_name: Option<String>,
}

impl TestEnv {
    fn new(backend: Backend) -> Self {
        let dir = std::env::temp_dir().join(format!("homeward-cli-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the test dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}?mode=rwc", dir.join("data").join("homeward.db").display());
                Self { backend, dir, url, pg_name: None }
            }
            Backend::Postgres => {
                let name = format!("homeward_cli_test_{}", Uuid::new_v4().simple());
                let admin = postgres_admin_url();
                block_on(async {
                    sqlx::any::install_default_drivers();
                    let mut conn = sqlx::AnyConnection::connect(&admin)
                        .await
                        .unwrap_or_else(|e| panic!("PostgreSQL must be running for the tests ({admin}): {e}"));
                    conn.execute(format!("create database {name}").as_str()).await.expect("create the test database");
                    let _ = conn.close().await;
                });
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
                let url = format!("{base}/{name}");
                Self { backend, dir, url, pg_name: Some(name) }
            }
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The binary with this environment's settings: SQLite is reached through `HOMEWARD_DATA_DIR` (the
    /// default database), PostgreSQL through `DATABASE_URL`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.args(args).current_dir(&self.dir).stdin(Stdio::null());
        for var in SETTINGS_ENV {
            command.env_remove(var);
        }
        command.env("HOMEWARD_DATA_DIR", self.data_dir());
        if self.backend == Backend::Postgres {
            command.env("DATABASE_URL", &self.url);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Outcome {
        run(self.command(args))
    }

    /// One number from the database, for checks the command line cannot make (e.g. nothing was written).
    fn count(&self, sql: &str) -> i64 {
        block_on(async {
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&self.url).await.expect("connect to the test database");
            let row = conn.fetch_one(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let n: i64 = row.try_get(0).expect("a count");
            let _ = conn.close().await;
            n
        })
    }

    fn create_school(&self, name: &str, admin_email: &str) -> School {
        let out = self
            .run(&[
                "create-school",
                "--name",
                name,
                "--admin-email",
                admin_email,
                "--admin-name",
                "Alex Head",
                "--admin-password",
                PASSWORD,
            ])
            .success();
        let id = uuid_after(&out.stdout, "with id ");
        let admin_id = uuid_after(&out.stdout, &format!("admin: {admin_email} ("));
        School { id, admin_id }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(name) = self.pg_name.take() {
            // From a thread of its own: this may run while a runtime is unwinding.
            let _ = std::thread::spawn(move || {
                block_on(async move {
                    sqlx::any::install_default_drivers();
                    if let Ok(mut conn) = sqlx::AnyConnection::connect(&postgres_admin_url()).await {
                        let _ = conn.execute(format!("drop database if exists {name} with (force)").as_str()).await;
                        let _ = conn.close().await;
                    }
                })
            })
            .join();
        }
    }
}

struct School {
    id: Uuid,
    admin_id: Uuid,
}

/// The UUID printed right after `marker` in `text`.
fn uuid_after(text: &str, marker: &str) -> Uuid {
    let start = text.find(marker).unwrap_or_else(|| panic!("`{marker}` is not in:\n{text}")) + marker.len();
    let raw = text.get(start..start + 36).unwrap_or_else(|| panic!("no id after `{marker}` in:\n{text}"));
    Uuid::parse_str(raw).unwrap_or_else(|e| panic!("`{raw}` after `{marker}` is not a UUID ({e}) in:\n{text}"))
}

/// Kills the child when dropped, so a failing test leaves no process behind.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the child is running")
    }

    /// Wait for the child to exit by itself; `None` on timeout (the guard still kills it later).
    fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child().try_wait().expect("poll the child") {
                self.0 = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn drain(mut reader: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// What a finished command did.
#[derive(Debug)]
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    #[track_caller]
    fn success(self) -> Self {
        assert!(self.status.success(), "the command failed ({}):\n{self}", self.status);
        self
    }

    #[track_caller]
    fn failure(self) -> Self {
        assert!(!self.status.success(), "the command should have failed:\n{self}");
        assert!(self.status.code().is_some(), "the command should exit, not die of a signal:\n{self}");
        self
    }

    /// A failure whose standard error says `message`.
    #[track_caller]
    fn fails_with(self, message: &str) -> Self {
        let out = self.failure();
        assert!(out.stderr.contains(message), "standard error should say `{message}`:\n{out}");
        out
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- stdout ---\n{}--- stderr ---\n{}", self.stdout, self.stderr)
    }
}

/// Run a command to its end (with a time limit), capturing what it prints.
fn run(mut command: Command) -> Outcome {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the homeward binary");
    let mut guard = ChildGuard(Some(child));
    let stdout = drain(guard.child().stdout.take().expect("stdout"));
    let stderr = drain(guard.child().stderr.take().expect("stderr"));
    let status = guard.wait_for(COMMAND_TIMEOUT);
    drop(guard);
    let stdout = stdout.join().expect("read stdout");
    let stderr = stderr.join().expect("read stderr");
    let Some(status) = status else {
        panic!("{command:?} did not finish in {COMMAND_TIMEOUT:?}:\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}");
    };
    Outcome { status, stdout, stderr }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// `homeward serve`, started and listening.
struct Server {
    guard: ChildGuard,
    base: String,
    /// Standard output up to and including the `listening on` line.
    banner: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Start `homeward ARGS` with `HOMEWARD_BIND` on a free port and wait for it to say it listens.
    fn start(env: &TestEnv, args: &[&str]) -> Server {
        for attempt in 1..=3 {
            let port = free_port();
            let mut command = env.command(args);
            command.env("HOMEWARD_BIND", format!("127.0.0.1:{port}"));
            match Server::start_command(command, port) {
                Ok(server) => return server,
                // Someone took the port between our check and the server's bind: try another.
                Err(out) if attempt < 3 && out.contains("in use") => continue,
                Err(out) => panic!("the server did not start:\n{out}"),
            }
        }
        unreachable!()
    }

    /// Start the command and wait for `listening on http://127.0.0.1:PORT`; on failure, what it printed.
    fn start_command(mut command: Command, port: u16) -> Result<Server, String> {
        let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the homeward binary");
        let mut guard = ChildGuard(Some(child));
        let stdout = guard.child().stdout.take().expect("stdout");
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    // Nobody listens any more; keep draining so the server never blocks on a full pipe.
                    continue;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut stderr_pipe = BufReader::new(guard.child().stderr.take().expect("stderr"));
        let stderr_sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while matches!(stderr_pipe.read_line(&mut line), Ok(n) if n > 0) {
                stderr_sink.lock().expect("stderr lock").push_str(&line);
                line.clear();
            }
        });
        let expected = format!("listening on http://127.0.0.1:{port}");
        let banner = wait_for_line(&lines, &expected, START_TIMEOUT);
        match banner {
            Ok(banner) => Ok(Server { guard, base: format!("http://127.0.0.1:{port}"), banner, stderr }),
            Err(seen) => {
                // Let it finish writing why it stopped (if it did) before reporting.
                let _ = guard.wait_for(Duration::from_secs(2));
                drop(guard);
                std::thread::sleep(Duration::from_millis(100));
                let stderr = stderr.lock().expect("stderr lock").clone();
                Err(format!("waiting for `{expected}`\n--- stdout ---\n{}\n--- stderr ---\n{stderr}", seen.join("\n")))
            }
        }
    }

    fn banner(&self) -> String {
        self.banner.join("\n")
    }

    fn pid(&mut self) -> String {
        self.guard.child().id().to_string()
    }

    /// Send `signal` (e.g. `TERM`) and expect a clean exit, status 0, within [`STOP_TIMEOUT`].
    fn stop_with(mut self, signal: &str) {
        let pid = self.pid();
        let kill = Command::new("kill").args([format!("-{signal}"), pid]).status().expect("run kill");
        assert!(kill.success(), "kill -{signal} failed");
        let status = self.guard.wait_for(STOP_TIMEOUT);
        let stderr = self.stderr.lock().expect("stderr lock").clone();
        let status = status
            .unwrap_or_else(|| panic!("the server did not stop within {STOP_TIMEOUT:?} of SIG{signal}:\n{stderr}"));
        assert!(status.success(), "the server should exit with 0 on SIG{signal}, got {status}:\n{stderr}");
    }

    /// Sign in; `Err(status)` when refused.
    fn sign_in(&self, email: &str, password: &str) -> Result<SignedIn, u16> {
        let url = format!("{}/api/v1/auth/login", self.base);
        let (status, body) = block_on(async {
            let response = reqwest::Client::new()
                .post(&url)
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await
                .expect("reach the server");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("a JSON body"))
        });
        if status != 200 {
            return Err(status);
        }
        let token = body["token"].as_str().unwrap_or_else(|| panic!("no token in {body}")).to_string();
        Ok(SignedIn { base: self.base.clone(), token, user: body["user"].clone() })
    }

    #[track_caller]
    fn must_sign_in(&self, email: &str, password: &str) -> SignedIn {
        self.sign_in(email, password).unwrap_or_else(|status| panic!("{email} cannot sign in: HTTP {status}"))
    }

    fn get_status(&self, path: &str) -> u16 {
        let url = format!("{}{path}", self.base);
        block_on(async { reqwest::get(&url).await.expect("reach the server").status().as_u16() })
    }
}

/// Lines up to and including `expected`; `Err` with the lines seen when it does not come in time.
fn wait_for_line(lines: &Receiver<String>, expected: &str, timeout: Duration) -> Result<Vec<String>, Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = line == expected;
                seen.push(line);
                if done {
                    return Ok(seen);
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return Err(seen),
        }
    }
}

struct SignedIn {
    base: String,
    token: String,
    user: Value,
}

impl SignedIn {
    fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.base);
        block_on(async {
            let response =
                reqwest::Client::new().get(&url).bearer_auth(&self.token).send().await.expect("reach the server");
            let status = response.status();
            let body = response.json::<Value>().await.expect("a JSON body");
            assert!(status.is_success(), "GET {path}: {status} {body}");
            body
        })
    }

    fn id(&self) -> Uuid {
        self.user["id"].as_str().and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("no id in {}", self.user))
    }
}

fn roles_of(user: &Value) -> Vec<String> {
    let mut roles: Vec<String> = user["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("no roles in {user}"))
        .iter()
        .map(|r| r.as_str().expect("a role").to_string())
        .collect();
    roles.sort();
    roles
}

fn user_with_email<'a>(users: &'a Value, email: &str) -> &'a Value {
    users
        .as_array()
        .expect("a list of users")
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not in {users}"))
}

fn write_file(path: &Path, text: &str) -> String {
    std::fs::write(path, text).expect("write the test file");
    path.display().to_string()
}

// ---------------------------------------------------------------------------------------------------

#[test]
fn help_lists_settings_and_commands() {
    let mut command = Command::new(BIN);
    command.arg("--help").stdin(Stdio::null());
    for var in SETTINGS_ENV {
        command.env_remove(var);
    }
    let out = run(command).success();
    for needle in [
        "HOMEWARD_BIND",
        "DATABASE_URL",
        "HOMEWARD_DATA_DIR",
        "HOMEWARD_ACCESS_TOKEN_TTL_SECS",
        "serve",
        "create-school",
        "add-user",
        "import-staff",
        "seed-demo",
    ] {
        assert!(out.stdout.contains(needle), "`homeward --help` should mention {needle}:\n{out}");
    }

    // The settings are global: every command's help lists them too.
    for sub in ["serve", "create-school", "add-user", "import-staff", "seed-demo"] {
        let mut command = Command::new(BIN);
        command.args([sub, "--help"]).stdin(Stdio::null());
        let out = run(command).success();
        for needle in ["HOMEWARD_BIND", "DATABASE_URL", "HOMEWARD_DATA_DIR"] {
            assert!(out.stdout.contains(needle), "`homeward {sub} --help` should mention {needle}:\n{out}");
        }
    }

    let mut command = Command::new(BIN);
    command.arg("no-such-command").stdin(Stdio::null());
    let out = run(command).failure();
    assert_eq!(out.status.code(), Some(2), "a usage error exits with 2:\n{out}");
    assert!(out.stderr.contains("no-such-command"), "{out}");
}

/// The secrets, each with a marker, as an operator's environment would hold them.
const SECRETS: [(&str, &str); 5] = [
    ("DATABASE_URL", "postgres://u:s3cret-db@db.example/homeward"),
    ("HOMEWARD_SMTP_URL", "smtp://alerts:s3cret-smtp@mail.example:587?tls=required"),
    ("HOMEWARD_SMS_PASSWORD", "s3cret-sms-password"),
    ("HOMEWARD_SMS_BEARER_TOKEN", "s3cret-sms-token"),
    ("HOMEWARD_SMS_EXTRA_FIELDS", "api_key=s3cret-sms-key"),
];

/// `--help` names the variables (and their `_FILE` forms) but never shows a secret's value, which clap
/// would otherwise print beside its variable.
#[test]
fn help_never_shows_a_secret() {
    for args in [&["--help"][..], &["serve", "--help"], &["create-school", "--help"]] {
        let mut command = Command::new(BIN);
        command.args(args).stdin(Stdio::null());
        for var in SETTINGS_ENV {
            command.env_remove(var);
        }
        for (var, value) in SECRETS {
            command.env(var, value);
        }
        let out = run(command).success();
        for (var, value) in SECRETS {
            assert!(
                out.stdout.contains(&format!("{var}_FILE")),
                "`homeward {args:?}` should mention {var}_FILE:\n{out}"
            );
            assert!(!out.stdout.contains(value), "`homeward {args:?}` shows {var}'s value:\n{out}");
        }
        assert!(!out.stdout.contains("s3cret"), "`homeward {args:?}` shows a secret:\n{out}");
    }
}

/// Each secret can be read from the file its `_FILE` variable names, instead of sitting in the
/// environment: the server runs on the database URL read from a file. A secret given both ways, or a
/// file that cannot be read, is refused with a message naming both (and never the secret).
fn secrets_can_be_read_from_files(backend: Backend) {
    let env = TestEnv::new(backend);
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", env.path("from-file.db").display()),
        Backend::Postgres => env.url.clone(),
    };
    let url_file = write_file(&env.path("database-url"), &format!("{url}\n"));
    let with_file = |args: &[&str], var: &str, path: &str| {
        let mut command = env.command(args);
        command.env_remove("DATABASE_URL").env(var, path);
        command
    };
    let create = [
        "create-school",
        "--name",
        "File School",
        "--admin-email",
        "head@file.test",
        "--admin-name",
        "File Head",
        "--admin-password",
        PASSWORD,
    ];
    run(with_file(&create, "DATABASE_URL_FILE", &url_file)).success();
    match backend {
        Backend::Sqlite => {
            assert!(env.path("from-file.db").is_file(), "the database named in the file was created");
            assert!(!env.data_dir().join("homeward.db").exists(), "not the data dir's default");
        }
        Backend::Postgres => assert_eq!(env.count("select count(*) from schools"), 1),
    }
    // The server runs on it too: the admin just created signs in.
    let port = free_port();
    let mut serve = with_file(&["serve"], "DATABASE_URL_FILE", &url_file);
    serve.env("HOMEWARD_BIND", format!("127.0.0.1:{port}"));
    let server = Server::start_command(serve, port).unwrap_or_else(|out| panic!("the server did not start:\n{out}"));
    server.must_sign_in("head@file.test", PASSWORD);
    server.stop_with("TERM");

    // The SMTP URL is read from its file: a wrong one there stops the start with the SMTP URL's error.
    let smtp_file = write_file(&env.path("smtp-url"), "ftp://alerts:s3cret-smtp@mail.example\n");
    let mut serve = with_file(&["serve", "--bind", "127.0.0.1:0"], "HOMEWARD_SMTP_URL_FILE", &smtp_file);
    serve.env("DATABASE_URL_FILE", &url_file);
    let out = run(serve).fails_with("HOMEWARD_SMTP_URL is not a valid smtp:// or smtps:// URL");
    assert!(!out.stderr.contains("s3cret"), "{out}");

    for (var, value) in SECRETS {
        let secret_file = write_file(&env.path(&format!("{var}.secret")), &format!("{value}\n"));
        // Both ways at once: refused, naming both.
        let mut both = with_file(&create, &format!("{var}_FILE"), &secret_file);
        both.env(var, value);
        let out = run(both).fails_with(&format!("{var} and {var}_FILE are both set"));
        assert!(!out.stderr.contains("s3cret"), "{out}");
        // A file that is not there: refused, naming the variable and the path.
        let missing = env.path(&format!("{var}.missing")).display().to_string();
        let out = run(with_file(&create, &format!("{var}_FILE"), &missing)).fails_with(&format!("{var}_FILE"));
        assert!(out.stderr.contains(&missing), "the path is named:\n{out}");
    }
    // Nothing was created by the refused commands.
    if backend == Backend::Postgres {
        assert_eq!(env.count("select count(*) from schools"), 1);
    }
}

fn create_school_and_add_users(backend: Backend) {
    let env = TestEnv::new(backend);
    let out = env
        .run(&[
            "create-school",
            "--name",
            "Riverside Primary",
            "--admin-email",
            "Head@Riverside.test",
            "--admin-name",
            "Alex Head",
            "--admin-password",
            PASSWORD,
        ])
        .success();
    assert!(out.stdout.contains("created school Riverside Primary with id "), "{out}");
    let school_id = uuid_after(&out.stdout, "with id ");
    let admin_id = uuid_after(&out.stdout, "admin: head@riverside.test (");
    if backend == Backend::Sqlite {
        assert!(env.data_dir().join("homeward.db").is_file(), "the SQLite default is homeward.db in HOMEWARD_DATA_DIR");
    }
    let school = school_id.to_string();

    let out = env
        .run(&[
            "add-user",
            "--school-id",
            &school,
            "--email",
            "jo@riverside.test",
            "--name",
            "Jo Bloggs",
            "--roles",
            "staff;leader",
            "--line-manager-email",
            "HEAD@riverside.test",
            "--password",
            PASSWORD,
        ])
        .success();
    let jo_id = uuid_after(&out.stdout, "added Jo Bloggs (jo@riverside.test) with id ");

    // The password may come from the environment instead of the command line; roles may be split by `,`.
    let out = run({
        let mut command = env.command(&[
            "add-user",
            "--school-id",
            &school,
            "--email",
            "sam@riverside.test",
            "--name",
            "Sam Safe",
            "--roles",
            "dsl, admin",
        ]);
        command.env("HOMEWARD_USER_PASSWORD", "another-long-password");
        command
    })
    .success();
    let sam_id = uuid_after(&out.stdout, "added Sam Safe (sam@riverside.test) with id ");

    // What the command line wrote is what the server serves.
    let server = Server::start(&env, &["serve"]);
    let jo = server.must_sign_in("jo@riverside.test", PASSWORD);
    assert_eq!(jo.id(), jo_id);
    let me = jo.get("/api/v1/me");
    assert_eq!(roles_of(&me), ["leader", "staff"]);
    assert_eq!(me["line_manager_id"], json!(admin_id), "{me}");
    assert_eq!(me["school_id"], json!(school_id), "{me}");
    assert_eq!(me["school_name"], "Riverside Primary");
    assert_eq!(me["name"], "Jo Bloggs");

    let sam = server.must_sign_in("sam@riverside.test", "another-long-password");
    assert_eq!(sam.id(), sam_id);
    assert_eq!(roles_of(&sam.user), ["admin", "dsl"]);
    assert_eq!(sam.user["line_manager_id"], Value::Null);

    let admin = server.must_sign_in("head@riverside.test", PASSWORD);
    assert_eq!(admin.id(), admin_id);
    assert_eq!(roles_of(&admin.user), ["admin"]);
    let users = admin.get("/api/v1/users");
    assert_eq!(users.as_array().map(Vec::len), Some(3), "{users}");
    server.stop_with("TERM");
}

fn bad_users_are_refused_with_a_clear_message(backend: Backend) {
    let env = TestEnv::new(backend);
    let school = env.create_school("Riverside Primary", "head@riverside.test");
    let id = school.id.to_string();
    let add = |email: &str, roles: &str, manager: Option<&str>, password: &str| {
        let mut args = vec![
            "add-user",
            "--school-id",
            &id,
            "--email",
            email,
            "--name",
            "Someone",
            "--roles",
            roles,
            "--password",
            password,
        ];
        if let Some(manager) = manager {
            args.extend(["--line-manager-email", manager]);
        }
        env.run(&args)
    };

    let out = add("not-an-email", "staff", None, PASSWORD).fails_with("`not-an-email` is not an e-mail address");
    assert!(out.stderr.starts_with("error: "), "errors are printed as `error: ...`:\n{out}");
    add("jo@riverside.test", "staff;boss", None, PASSWORD).fails_with("unknown role `boss`");
    add("jo@riverside.test", "staff", None, "short").fails_with("at least 10 characters");
    add("jo@riverside.test", "staff", Some("nobody@riverside.test"), PASSWORD)
        .fails_with("the line manager nobody@riverside.test is not in this school");
    add("jo@riverside.test", "staff", Some("not-an-email"), PASSWORD)
        .fails_with("`not-an-email` is not an e-mail address");
    add("head@riverside.test", "staff", None, PASSWORD)
        .fails_with("an account with the e-mail head@riverside.test already exists");

    let unknown = Uuid::new_v4();
    env.run(&[
        "add-user",
        "--school-id",
        &unknown.to_string(),
        "--email",
        "jo@riverside.test",
        "--name",
        "Jo",
        "--roles",
        "staff",
        "--password",
        PASSWORD,
    ])
    .fails_with(&format!("there is no school with id {unknown}"));
    let out = env
        .run(&[
            "add-user",
            "--school-id",
            "not-a-uuid",
            "--email",
            "jo@riverside.test",
            "--name",
            "Jo",
            "--roles",
            "staff",
            "--password",
            PASSWORD,
        ])
        .failure();
    assert!(out.stderr.contains("--school-id"), "{out}");

    // A line manager from another school is not this school's.
    let other = env.create_school("Other School", "head@other.test");
    add("jo@riverside.test", "staff", Some("head@other.test"), PASSWORD)
        .fails_with("the line manager head@other.test is not in this school");
    assert_ne!(other.id, school.id);

    // Nobody was added by any of the refused commands.
    assert_eq!(env.count(&format!("select count(*) from users where school_id = '{}'", school.id)), 1);

    // A school whose admin cannot be created is not created either.
    env.run(&[
        "create-school",
        "--name",
        "Half A School",
        "--admin-email",
        "bad-admin",
        "--admin-name",
        "X",
        "--admin-password",
        PASSWORD,
    ])
    .fails_with("`bad-admin` is not an e-mail address");
    env.run(&[
        "create-school",
        "--name",
        "Half A School",
        "--admin-email",
        "x@half.test",
        "--admin-name",
        "X",
        "--admin-password",
        "short",
    ])
    .fails_with("at least 10 characters");
    env.run(&[
        "create-school",
        "--name",
        "Half A School",
        "--admin-email",
        "head@riverside.test",
        "--admin-name",
        "X",
        "--admin-password",
        PASSWORD,
    ])
    .fails_with("already exists");
    env.run(&[
        "create-school",
        "--name",
        "  ",
        "--admin-email",
        "x@half.test",
        "--admin-name",
        "X",
        "--admin-password",
        PASSWORD,
    ])
    .fails_with("a school needs a name");
    assert_eq!(env.count("select count(*) from schools"), 2, "a refused create-school must leave no school behind");
    assert_eq!(env.count("select count(*) from users"), 2);
}

fn import_staff_is_all_or_nothing(backend: Backend) {
    let env = TestEnv::new(backend);
    let school = env.create_school("Riverside Primary", "head@school.test");
    let id = school.id.to_string();
    let users_in_school = || env.count(&format!("select count(*) from users where school_id = '{id}'"));

    // Rows that are wrong on their own: every one is reported, with its line.
    let bad = write_file(
        &env.path("bad.csv"),
        "email,name,roles,line_manager_email,password\n\
         ok.one@school.test,Ok One,staff,head@school.test,a-long-password\n\
         not-an-email,Bad Email,staff,,a-long-password\n\
         no.name@school.test,,staff,,a-long-password\n\
         boss@school.test,Boss,staff;boss,,a-long-password\n\
         short@school.test,Short,staff,,short\n\
         ok.one@school.test,Twice,staff,,a-long-password\n\
         few@school.test,Few Columns\n\
         self@school.test,Self,staff,self@school.test,a-long-password\n\
         manager@school.test,Bad Manager,staff,nobody,a-long-password\n",
    );
    let out =
        env.run(&["import-staff", "--school-id", &id, &bad]).fails_with("8 row(s) are wrong; nothing was imported");
    let reported: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with(&format!("{bad}:"))).collect();
    let expected = [
        (3, "`not-an-email` is not an e-mail address"),
        (4, "the name must be 1 to 100 characters"),
        (5, "unknown role `boss`"),
        (6, "at least 10 characters"),
        (7, "ok.one@school.test is already on line 2"),
        (8, "expected 5 columns, found 2"),
        (9, "a person cannot be their own line manager"),
        (10, "line manager: `nobody` is not an e-mail address"),
    ];
    // Line 2 is good; lines 3 to 10 are each reported once, in order.
    assert_eq!(reported.len(), expected.len(), "every bad row once:\n{out}");
    for (reported, (line, reason)) in reported.iter().zip(expected) {
        let prefix = format!("{bad}:{line}: ");
        assert!(
            reported.starts_with(&prefix) && reported.contains(reason),
            "expected `{prefix}...{reason}`, got `{reported}`\n{out}"
        );
    }
    assert!(!out.stdout.contains("imported"), "{out}");
    assert_eq!(users_in_school(), 1, "nothing is imported from a file with bad rows");

    // Rows that are wrong only against the database: also reported together, and nothing imported.
    let clash = write_file(
        &env.path("clash.csv"),
        "email,name,roles,line_manager_email,password\n\
         new.one@school.test,New One,staff,head@school.test,a-long-password\n\
         head@school.test,Head Again,staff,,a-long-password\n\
         new.two@school.test,New Two,staff,ghost@school.test,a-long-password\n",
    );
    let out =
        env.run(&["import-staff", "--school-id", &id, &clash]).fails_with("2 row(s) are wrong; nothing was imported");
    assert!(
        out.stderr.contains(&format!("{clash}:3: an account with the e-mail head@school.test already exists")),
        "{out}"
    );
    assert!(
        out.stderr.contains(&format!(
            "{clash}:4: the line manager ghost@school.test is neither in this school nor in this file"
        )),
        "{out}"
    );
    assert_eq!(users_in_school(), 1);

    // The shape of the file.
    let header = write_file(&env.path("header.csv"), "mail,name\na@school.test,A\n");
    env.run(&["import-staff", "--school-id", &id, &header])
        .fails_with(&format!("{header}:1: the header must be exactly"));
    let empty = write_file(&env.path("empty.csv"), "email,name,roles,line_manager_email,password\n");
    env.run(&["import-staff", "--school-id", &id, &empty])
        .fails_with(&format!("{empty}:1: the file has no staff rows"));
    env.run(&["import-staff", "--school-id", &id, &env.path("missing.csv").display().to_string()])
        .fails_with("cannot read");
    let unknown = Uuid::new_v4();
    env.run(&["import-staff", "--school-id", &unknown.to_string(), &clash])
        .fails_with(&format!("there is no school with id {unknown}"));

    // A good file (the good rows of the bad files among them, so they were indeed not imported);
    // a line manager may come later in the file than their staff.
    let good = write_file(
        &env.path("good.csv"),
        "email,name,roles,line_manager_email,password\n\
         ok.one@school.test,Ok One,staff,Lead@School.test,a-long-password\n\
         new.one@school.test,New One,staff;leader,head@school.test,a-long-password\n\
         lead@school.test,Lee Lead,leader;dsl,,another-long-password\n",
    );
    let out = env.run(&["import-staff", "--school-id", &id, &good]).success();
    assert!(out.stdout.contains("imported 3 staff"), "{out}");
    assert_eq!(users_in_school(), 4);

    // Importing the same file again changes nothing: every row is already there.
    let out =
        env.run(&["import-staff", "--school-id", &id, &good]).fails_with("3 row(s) are wrong; nothing was imported");
    for line in 2..=4 {
        assert!(out.stderr.contains(&format!("{good}:{line}: an account with the e-mail")), "{out}");
    }
    assert_eq!(users_in_school(), 4);

    // The imported staff sign in with their own passwords and report to whom the file says.
    let server = Server::start(&env, &["serve"]);
    let lead = server.must_sign_in("lead@school.test", "another-long-password");
    assert_eq!(roles_of(&lead.user), ["dsl", "leader"]);
    let ok_one = server.must_sign_in("ok.one@school.test", PASSWORD);
    assert_eq!(roles_of(&ok_one.user), ["staff"]);
    assert_eq!(ok_one.user["line_manager_id"], json!(lead.id()), "{}", ok_one.user);
    let new_one = server.must_sign_in("new.one@school.test", PASSWORD);
    assert_eq!(roles_of(&new_one.user), ["leader", "staff"]);
    assert_eq!(new_one.user["line_manager_id"], json!(school.admin_id));
    assert_eq!(
        server.sign_in("boss@school.test", PASSWORD).err(),
        Some(401),
        "rows of a refused file were not imported"
    );
    let admin = server.must_sign_in("head@school.test", PASSWORD);
    let users = admin.get("/api/v1/users");
    assert_eq!(users.as_array().map(Vec::len), Some(4), "{users}");
    assert_eq!(user_with_email(&users, "lead@school.test")["name"], "Lee Lead");
    server.stop_with("TERM");
}

fn seed_demo_twice_creates_nothing_new(backend: Backend) {
    let env = TestEnv::new(backend);
    let first = env.run(&["seed-demo"]).success();
    let id = uuid_after(&first.stdout, "created demo school ");
    let second = env.run(&["seed-demo"]).success();
    assert_eq!(uuid_after(&second.stdout, "already have the demo school "), id, "{second}");
    assert!(!second.stdout.contains("created"), "{second}");
    for out in [&first, &second] {
        assert!(out.stdout.contains("Demo school: Harbourside Academy (demo)"), "{out}");
        assert!(out.stdout.contains(&format!("Demo sign-ins (password for all: {DEMO_PASSWORD})")), "{out}");
        for email in DEMO_PEOPLE {
            assert!(out.stdout.contains(email), "the sign-ins should list {email}:\n{out}");
        }
    }
    assert_eq!(env.count("select count(*) from schools"), 1);
    assert_eq!(env.count("select count(*) from users"), DEMO_PEOPLE.len() as i64);
    assert_eq!(env.count("select count(*) from sessions"), DEMO_ADDRESSES.len() as i64);

    // `serve --demo` over the seeded school does not seed again but still prints the sign-ins.
    let server = Server::start(&env, &["serve", "--demo"]);
    let banner = server.banner();
    assert!(!banner.contains("seeded the demo school"), "{banner}");
    assert!(banner.contains(DANA), "{banner}");
    let dana = server.must_sign_in(DANA, DEMO_PASSWORD);
    let sessions = dana.get("/api/v1/sessions");
    assert_eq!(sessions.as_array().map(Vec::len), Some(DEMO_ADDRESSES.len()), "{sessions}");
    let admin = server.must_sign_in(DEMO_PEOPLE[0], DEMO_PASSWORD);
    assert_eq!(admin.user["school_id"], json!(id));
    assert_eq!(admin.get("/api/v1/users").as_array().map(Vec::len), Some(DEMO_PEOPLE.len()));
    server.stop_with("TERM");
    assert_eq!(env.count("select count(*) from schools"), 1);
    assert_eq!(env.count("select count(*) from users"), DEMO_PEOPLE.len() as i64);
}

/// A demo e-mail already in use must not leave a half-seeded demo school that later runs take for a
/// whole one.
fn seed_demo_refuses_when_a_demo_email_is_taken(backend: Backend) {
    let env = TestEnv::new(backend);
    env.create_school("Real School", DANA);
    for _ in 0..2 {
        env.run(&["seed-demo"]).fails_with(&format!("an account with the e-mail {DANA} already exists"));
    }
    assert_eq!(env.count("select count(*) from schools"), 1, "no demo school is left behind");
    assert_eq!(env.count("select count(*) from users"), 1);
}

fn serve_demo_signs_in_and_stops_cleanly(backend: Backend) {
    let env = TestEnv::new(backend);
    let server = Server::start(&env, &["serve", "--demo"]);
    let banner = server.banner();
    assert!(banner.contains("seeded the demo school"), "{banner}");
    assert!(banner.contains(&format!("password for all: {DEMO_PASSWORD}")), "{banner}");
    for email in DEMO_PEOPLE {
        assert!(banner.contains(email), "{banner}");
    }
    assert_eq!(server.get_status("/health"), 200);
    assert_eq!(server.get_status("/ready"), 200);

    let dana = server.must_sign_in(DANA, DEMO_PASSWORD);
    assert_eq!(dana.user["name"], "Dana Whitfield");
    assert_eq!(roles_of(&dana.user), ["staff"]);
    let sessions = dana.get("/api/v1/sessions");
    let mut addresses: Vec<&str> = sessions
        .as_array()
        .unwrap_or_else(|| panic!("a list: {sessions}"))
        .iter()
        .map(|s| s["address"].as_str().expect("an address"))
        .collect();
    addresses.sort();
    let mut expected = DEMO_ADDRESSES.to_vec();
    expected.sort();
    assert_eq!(addresses, expected, "{sessions}");
    for session in sessions.as_array().expect("a list") {
        assert_eq!(session["worker_id"], json!(dana.id()), "{session}");
        assert_eq!(session["kind"], "home_visit", "{session}");
    }
    assert_eq!(server.sign_in(DANA, "not-the-password").err(), Some(401));
    server.stop_with("TERM");

    // The data outlives the process; a plain `serve` neither seeds nor prints sign-ins, and stops on
    // SIGINT (Ctrl-C) as cleanly as on SIGTERM.
    let server = Server::start(&env, &[]);
    let banner = server.banner();
    assert!(!banner.contains("seeded") && !banner.contains("Demo sign-ins"), "{banner}");
    let dana = server.must_sign_in(DANA, DEMO_PASSWORD);
    assert_eq!(dana.get("/api/v1/sessions").as_array().map(Vec::len), Some(DEMO_ADDRESSES.len()));
    server.stop_with("INT");
}

fn flags_win_over_the_environment(backend: Backend) {
    let env = TestEnv::new(backend);
    let create = |extra_env: (&str, String), flags: &[String]| {
        let mut args: Vec<String> =
            ["create-school", "--name", "Flag School", "--admin-email"].map(String::from).to_vec();
        args.push(format!("head-{}@flag.test", Uuid::new_v4().simple()));
        args.extend(["--admin-name", "Flag Head"].map(String::from));
        // Flags are global: they may come after the command.
        args.extend(flags.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = env.command(&args);
        command.env(extra_env.0, extra_env.1);
        run(command)
    };
    let elsewhere = env.path("elsewhere");
    match backend {
        Backend::Sqlite => {
            // `--data-dir` beats HOMEWARD_DATA_DIR.
            let flag_dir = env.path("flag-data");
            create(
                ("HOMEWARD_ADMIN_PASSWORD", PASSWORD.into()),
                &["--data-dir".into(), flag_dir.display().to_string()],
            )
            .success();
            assert!(flag_dir.join("homeward.db").is_file());
            assert!(!env.data_dir().exists(), "HOMEWARD_DATA_DIR should lose to --data-dir");
            // DATABASE_URL beats the data dir's default file.
            let file = env.path("chosen.db");
            create(
                ("DATABASE_URL", format!("sqlite://{}?mode=rwc", file.display())),
                &["--admin-password".into(), PASSWORD.into()],
            )
            .success();
            assert!(file.is_file());
            // The data dir holds the audit key whatever the database, but not a database file.
            assert!(!env.data_dir().join("homeward.db").exists());
        }
        Backend::Postgres => {
            // `--database-url` beats DATABASE_URL.
            let wrong = format!("sqlite://{}?mode=rwc", elsewhere.join("wrong.db").display());
            create(
                ("DATABASE_URL", wrong),
                &["--admin-password".into(), PASSWORD.into(), "--database-url".into(), env.url.clone()],
            )
            .success();
            assert!(!elsewhere.exists());
            assert_eq!(env.count("select count(*) from schools"), 1);
        }
    }

    // A DATABASE_URL of an unknown kind is refused with a clear message.
    create(("DATABASE_URL", "mysql://root@localhost/homeward".into()), &["--admin-password".into(), PASSWORD.into()])
        .fails_with("DATABASE_URL must start with sqlite: or postgres://");

    // `--bind` beats HOMEWARD_BIND (which names a port already taken here).
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("address").port();
    let mut server = None;
    for attempt in 1..=3 {
        let port = free_port();
        let mut command = env.command(&["serve", "--bind", &format!("127.0.0.1:{port}")]);
        command.env("HOMEWARD_BIND", format!("127.0.0.1:{taken_port}"));
        match Server::start_command(command, port) {
            Ok(started) => {
                server = Some(started);
                break;
            }
            Err(out) if attempt < 3 && out.contains("in use") => continue,
            Err(out) => panic!("the server did not start on the --bind address:\n{out}"),
        }
    }
    let server = server.expect("a server");
    assert_eq!(server.get_status("/health"), 200);
    server.stop_with("TERM");
    drop(taken);
}

/// The log is read by operators and shipped to log stores: it must never hold a password, a bearer
/// token, or what identifies a child or their home (address, pupil reference, household and outcome
/// notes). The server runs at debug level for its own code here, the most it would ever log.
fn logs_hold_no_secrets_or_childrens_details(backend: Backend) {
    const WRONG_PASSWORD: &str = "Wrong-Password-Marker-5521";
    const ADDRESS: &str = "42 Marker Lane, Logtown";
    const PUPIL: &str = "ADM-7731";
    const HOUSEHOLD: &str = "Household-Marker: father's new partner, large dog";
    const OUTCOME: &str = "Outcome-Marker: bruise on left arm";

    let env = TestEnv::new(backend);
    let port = free_port();
    let mut command = env.command(&["serve", "--demo"]);
    command.env("HOMEWARD_BIND", format!("127.0.0.1:{port}")).env("RUST_LOG", "info,homeward_server=debug");
    let server = Server::start_command(command, port).unwrap_or_else(|out| panic!("the server did not start:\n{out}"));

    assert_eq!(server.sign_in(DANA, WRONG_PASSWORD).err(), Some(401));
    let dana = server.must_sign_in(DANA, DEMO_PASSWORD);
    let send = |path: &str, body: Value| -> (u16, Value) {
        let url = format!("{}{path}", server.base);
        block_on(async {
            let response = reqwest::Client::new()
                .post(&url)
                .bearer_auth(&dana.token)
                .json(&body)
                .send()
                .await
                .expect("reach the server");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    let now = chrono::Utc::now();
    let mut visit = json!({
        "kind": "home_visit",
        "sub_kind": "procedural",
        "address": ADDRESS,
        "location": { "latitude": 51.5, "longitude": -0.12 },
        "geofence_radius_m": 150,
        "pupil_reference": PUPIL,
        "household_notes": HOUSEHOLD,
        "planned_start": now,
        "expected_duration_minutes": 60,
        "check_in_interval_minutes": 20,
        "risk_assessment": serde_json::to_value(homeward_shared::RiskAssessment::all_low()).expect("json"),
    });
    // Refused input echoes nothing of the child into the log either, even where the error message
    // quotes the value sent (a string where a number belongs).
    visit["expected_duration_minutes"] = json!(ADDRESS);
    assert_eq!(send("/api/v1/sessions", visit.clone()).0, 400);
    visit["expected_duration_minutes"] = json!(-5);
    assert_eq!(send("/api/v1/sessions", visit.clone()).0, 422);
    visit["expected_duration_minutes"] = json!(60);
    let (status, planned) = send("/api/v1/sessions", visit);
    assert_eq!(status, 201, "{planned}");
    let id = planned["id"].as_str().expect("a session id").to_owned();
    let events = json!({ "events": [
        { "id": Uuid::new_v4(), "at": now, "type": "start", "location": { "latitude": 51.5, "longitude": -0.12 } },
        { "id": Uuid::new_v4(), "at": now + chrono::Duration::seconds(1), "type": "check_in" },
        { "id": Uuid::new_v4(), "at": now + chrono::Duration::seconds(2), "type": "end" },
    ]});
    let (status, body) = send(&format!("/api/v1/sessions/{id}/events"), events);
    assert_eq!(status, 200, "{body}");
    let outcome = json!({ "outcome": {
        "child_seen": true, "responsible_adult_present": true, "entered_premises": true,
        "concern": "safeguarding", "notes": OUTCOME,
    }});
    let (status, body) = send(&format!("/api/v1/sessions/{id}/outcome"), outcome);
    assert!((200..300).contains(&status), "outcome: {status} {body}");
    let stderr = server.stderr.clone();
    server.stop_with("TERM");

    let log = without_colours(&stderr.lock().expect("stderr lock"));
    // The log is there and covers these requests (the sign-ins, the refusals), so its silence below
    // means something.
    assert!(log.contains("signed in user="), "the sign-in was not logged:\n{log}");
    assert_eq!(log.matches("request refused").count(), 3, "the wrong password and two bad visits:\n{log}");
    for secret in [DEMO_PASSWORD, WRONG_PASSWORD, dana.token.as_str(), ADDRESS, PUPIL, HOUSEHOLD, OUTCOME] {
        assert!(!log.contains(secret), "the log holds `{secret}`:\n{log}");
    }
}

/// The log as text: terminal colour codes (`ESC [ ... m`) removed.
fn without_colours(log: &str) -> String {
    let mut text = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    text
}
