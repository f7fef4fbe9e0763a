//! A PostgreSQL server of a test's own, in a temporary directory on a free port, that the test may stop
//! and start again (the shared server on 5432 serves every other test, so it must never be restarted).
//! Built from the installed PostgreSQL's `initdb` and `pg_ctl`; run as user `postgres` when the tests
//! run as root, since PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    /// Create the cluster and start it.
    pub fn start() -> PrivatePostgres {
        let bin = newest_bin_dir();
        let dir = std::env::temp_dir().join(format!("homeward-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        if is_root() {
            run(Command::new("chown").args(["postgres:postgres"]).arg(&dir), "chown the cluster directory");
        }
        let port = crate::free_port();
        let cluster = PrivatePostgres { dir, bin, port };
        let data = cluster.data_dir();
        cluster.pg(
            "initdb",
            &["-D", path(&data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions"],
            "initdb",
        );
        cluster.start_again();
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Start the server (again) and wait until it accepts connections.
    pub fn start_again(&self) {
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -k {}", self.port, path(&self.dir));
        let log = self.dir.join("server.log");
        self.pg("pg_ctl", &["-D", path(&self.data_dir()), "-l", path(&log), "-o", &options, "-w", "start"], "start");
    }

    /// Stop the server: open connections are closed, as in a real restart.
    pub fn stop(&self) {
        self.pg("pg_ctl", &["-D", path(&self.data_dir()), "-m", "fast", "-w", "stop"], "stop");
    }

    fn pg(&self, program: &str, args: &[&str], what: &str) {
        let program = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.args(args).current_dir(&self.dir);
        run(&mut command, &format!("{what} the private PostgreSQL"));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data_dir();
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let _ = command.args(["-D", path(&data), "-m", "immediate", "-w", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn newest_bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql (scripts/test installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").is_file())
        .collect();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().expect("a PostgreSQL with pg_ctl")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
