//! A real PostgreSQL server for tests: `initdb` into a temporary folder, `postgres` on a free
//! loopback port, stopped when dropped (and with the test process, if that dies first). Nothing
//! global is touched. PostgreSQL refuses to run as root, so as root it runs as the `postgres`
//! system user.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

pub struct TestPostgres {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

fn bin_dir() -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)")?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    found
        .pop()
        .ok_or_else(|| anyhow!("no PostgreSQL server under /usr/lib/postgresql"))
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// The `postgres` system user's uid and gid.
fn postgres_user() -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let output = Command::new("id").arg(flag).arg("postgres").output()?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .context("no `postgres` system user")
    };
    Ok((id("-u")?, id("-g")?))
}

/// `program`, as the `postgres` user when running as root.
fn command(program: &Path) -> Command {
    let mut command = Command::new(program);
    if is_root() {
        let (uid, gid) = postgres_user().expect("the postgres package creates the postgres user");
        command.uid(uid).gid(gid);
    }
    command
}

fn chown_to_postgres(path: &Path) -> Result<()> {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()?;
        if !status.success() {
            bail!("chown {} failed", path.display());
        }
    }
    Ok(())
}

/// An initialised data directory, made once per test process and copied for each server
/// (`initdb` is the slow part of starting one).
fn template() -> Result<&'static Path> {
    static TEMPLATE: OnceLock<Result<tempfile::TempDir, String>> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        (|| -> Result<tempfile::TempDir> {
            let dir = tempfile::tempdir()?;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
            chown_to_postgres(dir.path())?;
            let output = command(&bin_dir()?.join("initdb"))
                .args([
                    "--auth=trust",
                    "--username=postgres",
                    "--encoding=UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(dir.path().join("data"))
                .output()?;
            if !output.status.success() {
                bail!("initdb failed: {}", String::from_utf8_lossy(&output.stderr));
            }
            Ok(dir)
        })()
        .map_err(|e| format!("{e:#}"))
    });
    match template {
        Ok(dir) => Ok(dir.path()),
        Err(error) => Err(anyhow!("{error}")),
    }
}

impl TestPostgres {
    pub fn start() -> Result<TestPostgres> {
        let dir = tempfile::tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let status = Command::new("cp")
            .arg("-a")
            .arg(template()?.join("data"))
            .arg(dir.path())
            .status()?;
        if !status.success() {
            bail!("copying the template data directory failed");
        }
        chown_to_postgres(dir.path())?;
        let mut server = TestPostgres {
            dir,
            port: crate::ports::free_port()?,
            child: None,
        };
        // Another process may have taken the port since it was checked: try the next one.
        let mut attempts = 0;
        loop {
            match server.run() {
                Ok(()) => return Ok(server),
                Err(error) if attempts < 5 && format!("{error:#}").contains("could not bind") => {
                    attempts += 1;
                    server.port = crate::ports::free_port()?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&mut self) -> Result<()> {
        let log = std::fs::File::create(self.dir.path().join("postgres.log"))?;
        let mut command = command(&bin_dir()?.join("postgres"));
        command
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "shared_preload_libraries=pg_stat_statements",
            ])
            .args(["-c", "fsync=off", "-c", "pg_stat_statements.track=all"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // If the test process dies without dropping us, the server goes with it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(command.spawn().context("starting postgres")?);
        self.wait_ready()
    }

    /// Polls until the server accepts connections (bounded): readiness, not a fixed delay.
    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        let pg_isready = bin_dir()?.join("pg_isready");
        loop {
            let ready = Command::new(&pg_isready)
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-t",
                    "1",
                ])
                .stdout(Stdio::null())
                .status()?;
            if ready.success() {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().map(Child::try_wait).transpose()?.flatten() {
                let log = std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
                bail!("postgres exited with {status}: {log}");
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("postgres did not become ready within 60 s");
            }
            std::thread::yield_now();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, as `allowed_outbound_hosts` wants it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server and waits until it has exited.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let output = command(&bin_dir()?.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output()?;
            if !output.status.success() {
                child.kill()?;
            }
            child.wait()?;
        }
        Ok(())
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.run()
    }

    /// Runs SQL statements as the superuser (a client of our own, not through a component).
    pub async fn execute(&self, database: &str, sql: &str) -> Result<()> {
        let client = self.client(database).await?;
        client
            .batch_execute(sql)
            .await
            .with_context(|| format!("running {sql}"))?;
        Ok(())
    }

    pub async fn client(&self, database: &str) -> Result<tokio_postgres::Client> {
        let (client, connection) = tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
