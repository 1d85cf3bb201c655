//! A real `redis-server` (Debian's package, installed by `scripts/setup`) for the tests that
//! share a key-value store between Spin processes: one per test, on a port of its own, with
//! nothing saved to disk, stopped when dropped (or when the test process dies).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct TestRedis {
    port: u16,
    child: Option<Child>,
    /// The core it runs on (`taskset`), for benchmarks that keep it off Spin's core.
    core: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestRedis {
    pub fn start() -> Result<TestRedis> {
        TestRedis::start_on(None)
    }

    /// A server pinned to `core` when one is given.
    pub fn start_on(core: Option<&str>) -> Result<TestRedis> {
        let dir = tempfile::tempdir()?;
        let mut server = TestRedis {
            port: crate::ports::free_port()?,
            child: None,
            core: core.map(str::to_string),
            _dir: dir,
        };
        let mut attempts = 0;
        loop {
            match server.run() {
                Ok(()) => return Ok(server),
                // Another process took the port since it was checked: try the next one.
                Err(error) if attempts < 5 => {
                    attempts += 1;
                    eprintln!("test redis: {error:#}; trying another port");
                    server.port = crate::ports::free_port()?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn run(&mut self) -> Result<()> {
        let mut command = match &self.core {
            Some(core) => {
                let mut taskset = Command::new("taskset");
                taskset.args(["-c", core, "redis-server"]);
                taskset
            }
            None => Command::new("redis-server"),
        };
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self._dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(
            command
                .spawn()
                .context("starting redis-server (apt-get install redis-server; scripts/setup does)")?,
        );
        self.wait_ready()
    }

    /// Polls with `PING` until the server answers `+PONG` (bounded).
    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            if self.ping().is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().map(Child::try_wait).transpose()?.flatten() {
                self.child = None;
                bail!("redis-server exited with {status} (port {} taken?)", self.port);
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("redis-server did not answer within 20 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn ping(&self) -> Result<()> {
        match self.command("PING")?.as_str() {
            "+PONG" => Ok(()),
            other => bail!("unexpected reply {other:?}"),
        }
    }

    /// Sends one inline command and gives the first line of the reply.
    fn command(&self, command: &str) -> Result<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(format!("{command}\r\n").as_bytes())?;
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            stream.read_exact(&mut byte)?;
            reply.push(byte[0]);
        }
        Ok(String::from_utf8_lossy(&reply[..reply.len() - 2]).into_owned())
    }

    /// Makes the server fail every command at once, as a Redis does that a failover turned
    /// into a replica of a master it cannot reach: writes get `READONLY`, reads `MASTERDOWN`.
    /// (A *stopped* Redis is another matter on Spin 4.0.2: its client retries for minutes
    /// before a call fails; docs/limits.md.)
    pub fn fail(&self) -> Result<()> {
        for command in ["CONFIG SET replica-serve-stale-data no", "REPLICAOF 127.0.0.1 1"] {
            let reply = self.command(command)?;
            if !reply.starts_with('+') {
                bail!("{command}: {reply}");
            }
        }
        Ok(())
    }

    /// Undoes [`TestRedis::fail`]: a master again.
    pub fn recover(&self) -> Result<()> {
        let reply = self.command("REPLICAOF NO ONE")?;
        if !reply.starts_with('+') {
            bail!("REPLICAOF NO ONE: {reply}");
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A Spin runtime configuration that puts the `default` key-value store on this server.
    pub fn runtime_config(&self) -> String {
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            self.url()
        )
    }

    /// Stops the server (SIGKILL: gone at once, as a crash is) and waits until it has exited.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
