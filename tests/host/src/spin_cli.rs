//! A real `spin up` of the app, for tests and benchmarks that must see what Spin itself does (the
//! test host only mirrors it). The Spin CLI comes from `$LIBRA_SPIN`, else `spin` on `PATH`, else
//! `~/.local/bin/spin` (where `../shared/tools/spin/install` puts it).
//!
//! Each [`SpinApp`] has a state directory of its own (key-value store, SQLite database, component
//! logs), a manifest written for it (the shipped `spin.toml` with absolute sources, plus any
//! test-only workers), a port the kernel chose (`--listen 127.0.0.1:0`; Spin reports it with
//! `--format json`), and dies with the test process.
//!
//! `spin up` runs the app in a child process of its own (`spin trigger http`), which it stops
//! when it gets SIGTERM but not when it is killed: so Spin runs in a process group of its own,
//! stopped with SIGTERM (and then SIGKILL) as a group, and gets SIGTERM when the test process
//! dies.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, anyhow, bail};

use crate::project_root;

/// A worker added to the app for a test: component id, `.wasm` and `allowed_outbound_hosts`.
#[derive(Debug, Clone)]
pub struct ExtraWorker {
    pub id: String,
    pub wasm: PathBuf,
    pub allowed_outbound_hosts: Vec<String>,
    /// Component variables (`[component.<id>.variables]`), templates included.
    pub variables: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct SpinOptions {
    /// The manifest to start from.
    pub manifest: PathBuf,
    /// `--variable name=value`.
    pub variables: BTreeMap<String, String>,
    /// Components added with private routes.
    pub extra_workers: Vec<ExtraWorker>,
    /// SQL files run against the `default` database at start (`--sqlite @file`).
    pub sqlite_files: Vec<PathBuf>,
    /// A runtime configuration file's text (`--runtime-config-file`); `{state}` is replaced by
    /// the app's state directory.
    pub runtime_config: Option<String>,
    /// Environment variables for the Spin process (`SPIN_VARIABLE_*` included).
    pub env: Vec<(String, String)>,
    /// Extra arguments for `spin up`.
    pub args: Vec<String>,
    /// Public routes added to components: `(route, component id)`, e.g. `("/direct/...", "hello")`.
    pub public_routes: Vec<(String, String)>,
    /// Components of `manifest` run from another `.wasm`: `(component id, file)`, e.g. a
    /// benchmark build of the dispatcher.
    pub sources: Vec<(String, PathBuf)>,
    /// Components of `manifest` added again under another id, from another `.wasm`, with the
    /// rest of their settings (variables, allowed hosts, stores) as they are: `(new id, copied
    /// id, file)`. Give a copy a route with `public_routes`.
    pub copies: Vec<(String, String, PathBuf)>,
    /// A command that runs Spin, such as `taskset -c 0` (it must exec Spin in its own process).
    pub wrapper: Vec<String>,
    /// Run `manifest` as it is, from its own directory (its relative sources and build commands
    /// included), instead of a generated test manifest; `extra_workers` and `public_routes` are
    /// then not applied.
    pub as_is: bool,
    /// Name resolution for Spin's outbound requests: when not empty, Spin runs in a mount
    /// namespace of its own where `/etc/hosts` holds exactly these names (and `localhost`) and
    /// `/etc/resolv.conf` points at a loopback port nothing answers, so every other name fails
    /// at once. Needs root (`unshare -m`), as CI has.
    pub hosts: Vec<(String, std::net::IpAddr)>,
    /// The address to listen on; port 0 lets the kernel choose.
    pub listen: SocketAddr,
}

impl Default for SpinOptions {
    fn default() -> Self {
        SpinOptions {
            manifest: project_root().join("spin.toml"),
            variables: BTreeMap::new(),
            extra_workers: Vec::new(),
            sqlite_files: Vec::new(),
            runtime_config: None,
            env: Vec::new(),
            args: Vec::new(),
            public_routes: Vec::new(),
            sources: Vec::new(),
            copies: Vec::new(),
            wrapper: Vec::new(),
            hosts: Vec::new(),
            as_is: false,
            listen: "127.0.0.1:0".parse().expect("valid address"),
        }
    }
}

/// A running `spin up`; dropping it kills the process and removes its state.
pub struct SpinApp {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// The Spin CLI to run.
pub fn spin_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("LIBRA_SPIN") {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("spin"))
        .find(|candidate| candidate.is_file());
    let home = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/bin/spin"));
    on_path
        .or(home.filter(|path| path.is_file()))
        .ok_or_else(|| anyhow!("the Spin CLI is missing: run ../shared/tools/spin/install (scripts/test does)"))
}

impl SpinOptions {
    /// The benchmarks' mode (v), when `BENCH_V_WASM=<file>` names a build: that build of the
    /// dispatcher beside the shipped one, configured as the shipped one is (variables, allowed
    /// hosts, stores), at `/bench/dispatcher-variant/`. Whether it was added.
    pub fn add_bench_variant(&mut self) -> bool {
        let Some(variant) = std::env::var_os("BENCH_V_WASM") else {
            return false;
        };
        self.copies
            .push(("dispatcher-variant".into(), "dispatcher".into(), PathBuf::from(variant)));
        self.public_routes
            .push(("/bench/dispatcher-variant/...".into(), "dispatcher-variant".into()));
        true
    }

    /// The shipped app, with Spin pinned to `core` (`taskset`), as the benchmarks run it.
    pub fn pinned(core: &str) -> SpinOptions {
        SpinOptions {
            wrapper: vec!["taskset".into(), "-c".into(), core.into()],
            ..SpinOptions::default()
        }
    }
}

impl SpinApp {
    pub fn start(options: &SpinOptions) -> Result<SpinApp> {
        let dir = tempfile::Builder::new().prefix("libra-spin-").tempdir()?;
        let manifest = if options.as_is {
            options.manifest.clone()
        } else {
            let manifest = dir.path().join("spin.toml");
            std::fs::write(&manifest, test_manifest(options)?)?;
            manifest
        };
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state)?;

        let spin = spin_binary()?;
        let mut program: Vec<std::ffi::OsString> = Vec::new();
        if !options.hosts.is_empty() {
            let hosts = dir.path().join("hosts");
            let mut table = String::from("127.0.0.1 localhost\n::1 localhost\n");
            for (name, ip) in &options.hosts {
                table.push_str(&format!("{ip} {name}\n"));
            }
            std::fs::write(&hosts, table)?;
            let resolv = dir.path().join("resolv.conf");
            std::fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")?;
            program.extend(["unshare", "-m", "--", "sh", "-c"].map(Into::into));
            program.push(
                "mount --bind \"$0\" /etc/hosts && mount --bind \"$1\" /etc/resolv.conf && shift && exec \"$@\"".into(),
            );
            program.push(hosts.into());
            program.push(resolv.into());
        }
        program.extend(options.wrapper.iter().map(Into::into));
        program.push(spin.into());
        let mut command = Command::new(&program[0]);
        command.args(&program[1..]);
        command
            .arg("up")
            .arg("--from")
            .arg(&manifest)
            .arg("--state-dir")
            .arg(&state)
            .arg("--listen")
            .arg(options.listen.to_string())
            .args(["--format", "json", "--quiet"]);
        for (name, value) in &options.variables {
            command.arg("--variable").arg(format!("{name}={value}"));
        }
        for file in &options.sqlite_files {
            command.arg("--sqlite").arg(format!("@{}", file.display()));
        }
        if let Some(text) = &options.runtime_config {
            let path = dir.path().join("runtime-config.toml");
            std::fs::write(&path, text.replace("{state}", &state.display().to_string()))?;
            command.arg("--runtime-config-file").arg(path);
        }
        command.args(&options.args);
        // Only what the test says: no variables or settings leak in from the environment, and
        // the env provider's `.env` is looked for in the (empty) app directory.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SPIN_") {
                command.env_remove(name);
            }
        }
        command.envs(options.env.iter().map(|(k, v)| (k, v)));
        let working_dir = if options.as_is {
            manifest.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            dir.path().to_path_buf()
        };
        command
            .current_dir(working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("spin-stderr.txt"))?);
        command.process_group(0);
        let mut child = spawn_tied_to_this_process(command)?;
        let stdout = child.stdout.take().expect("piped");
        let addr = match read_base_url(stdout) {
            Ok(addr) => addr,
            Err(error) => {
                stop_group(&mut child);
                let stderr = std::fs::read_to_string(dir.path().join("spin-stderr.txt")).unwrap_or_default();
                bail!("spin up did not start: {error:#}\n{stderr}");
            }
        };
        Ok(SpinApp { child, addr, dir })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process that serves the app: `spin up`'s `spin trigger http` child.
    pub fn server_pid(&self) -> Result<u32> {
        let parent = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))?;
        children
            .split_whitespace()
            .next()
            .and_then(|pid| pid.parse().ok())
            .context("spin up has no child process")
    }

    /// The app's state directory (`--state-dir`).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Everything `component` wrote to stdout so far (Spin's `<state>/logs/<id>_stdout.txt`).
    pub fn stdout(&self, component: &str) -> String {
        std::fs::read_to_string(self.state_dir().join("logs").join(format!("{component}_stdout.txt")))
            .unwrap_or_default()
    }

    /// What `component` wrote to stderr so far.
    pub fn stderr(&self, component: &str) -> String {
        std::fs::read_to_string(self.state_dir().join("logs").join(format!("{component}_stderr.txt")))
            .unwrap_or_default()
    }

    /// What Spin itself printed to stderr.
    pub fn spin_stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("spin-stderr.txt")).unwrap_or_default()
    }

    /// The `default` SQLite database's file, which a test may write to while Spin runs.
    pub fn sqlite_path(&self) -> PathBuf {
        self.state_dir().join("sqlite_db.db")
    }

    /// The `default` key-value store's file (table `spin_key_value`).
    pub fn key_value_path(&self) -> PathBuf {
        self.state_dir().join("sqlite_key_value.db")
    }

    /// Resident and peak resident memory of the serving Spin process, in KiB
    /// (`/proc/<pid>/status`).
    pub fn memory_kib(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.server_pid()?))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .with_context(|| format!("{name} missing from /proc status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Resets the serving process's peak resident memory (`VmHWM`) to its current resident
    /// memory, so the next peak read is the peak since now (`/proc/<pid>/clear_refs`, value 5).
    pub fn reset_peak_memory(&self) -> Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.server_pid()?), "5")?;
        Ok(())
    }
}

impl Drop for SpinApp {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

/// Stops `spin up` and its trigger process: SIGTERM to the group (Spin passes it on and exits),
/// then SIGKILL to whatever is left of it.
fn stop_group(child: &mut Child) {
    let group = -(child.id() as i32);
    unsafe { libc::kill(group, libc::SIGTERM) };
    let _ = child.wait();
    unsafe { libc::kill(group, libc::SIGKILL) };
}

/// Writes `<dir>/spin.toml` for a small app of its own: `front` (component id, `.wasm`,
/// `allowed_outbound_hosts`) on every path, and `private` components reachable only by chaining.
pub fn write_small_app(
    dir: &Path,
    name: &str,
    front: (&str, &Path, &[&str]),
    private: &[(&str, &Path)],
) -> Result<PathBuf> {
    let (id, wasm, allowed) = front;
    let mut text = format!(
        "spin_manifest_version = 2\n[application]\nname = {name:?}\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = {id:?}\n\
         [component.{id}]\nsource = {:?}\nallowed_outbound_hosts = {allowed:?}\n",
        wasm.display().to_string()
    );
    for (id, wasm) in private {
        text.push_str(&format!(
            "[[trigger.http]]\nroute = {{ private = true }}\ncomponent = {id:?}\n\
             [component.{id}]\nsource = {:?}\n",
            wasm.display().to_string()
        ));
    }
    let manifest = dir.join("spin.toml");
    std::fs::write(&manifest, text)?;
    Ok(manifest)
}

/// Runs `wrk` pinned to `core` against `url` with `Host: host`, and gives its report. Fails if
/// wrk does, or if any answer was not 2xx/3xx or any socket failed: a benchmark of errors would
/// time the wrong thing.
pub fn wrk(core: &str, url: &str, host: &str, seconds: f64, concurrency: usize) -> Result<String> {
    let text = wrk_text(core, url, host, seconds, concurrency, &[])?;
    if text.contains("Non-2xx or 3xx responses") || text.contains("Socket errors") {
        bail!("{url} (Host: {host}): errors under load:\n{text}");
    }
    Ok(text)
}

/// wrk's report as it printed it, whatever the answers were; `extra` goes on its command line.
pub fn wrk_text(core: &str, url: &str, host: &str, seconds: f64, concurrency: usize, extra: &[&str]) -> Result<String> {
    let output = Command::new("taskset")
        .args(["-c", core, "wrk", "-t1", "--latency"])
        .args(extra)
        .arg(format!("-c{concurrency}"))
        .arg(format!("-d{seconds}s"))
        .args(["-H", &format!("Host: {host}")])
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(text)
}

/// The figures of a wrk report.
#[derive(Debug, Clone, Copy)]
pub struct WrkReport {
    pub requests: u64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers that were not 2xx or 3xx.
    pub non_2xx: u64,
}

impl WrkReport {
    pub fn parse(text: &str) -> Result<WrkReport> {
        let field = |prefix: &str| -> Result<&str> {
            text.lines()
                .find_map(|line| line.trim().strip_prefix(prefix))
                .map(str::trim)
                .with_context(|| format!("no '{prefix}' in wrk's output:\n{text}"))
        };
        let requests = text
            .lines()
            .find_map(|line| line.trim().split_once(" requests in "))
            .and_then(|(n, _)| n.trim().parse().ok())
            .with_context(|| format!("no request count in wrk's output:\n{text}"))?;
        Ok(WrkReport {
            requests,
            requests_per_s: field("Requests/sec:")?.parse()?,
            p50_ms: milliseconds(field("50%")?)?,
            p99_ms: milliseconds(field("99%")?)?,
            non_2xx: field("Non-2xx or 3xx responses:")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        })
    }
}

/// wrk prints latencies as `812.00us`, `8.15ms` or `1.02s`.
fn milliseconds(text: &str) -> Result<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else {
        bail!("latency '{text}'")
    };
    Ok(number.parse::<f64>()? * factor)
}

/// The cores of a benchmark: Spin's and its client's, from `BENCH_CORES=<spin>,<client>`
/// (default `0,1`).
pub fn bench_cores() -> Result<(String, String)> {
    let cores = std::env::var("BENCH_CORES").unwrap_or_else(|_| "0,1".into());
    let (spin, client) = cores.split_once(',').context("BENCH_CORES=<spin>,<client>")?;
    Ok((spin.to_string(), client.to_string()))
}

/// Pins this process (a benchmark's client) to one core, as `taskset` pins Spin to the other.
pub fn pin_this_process(core: &str) -> Result<()> {
    let core: usize = core.parse().context("a core number")?;
    // SAFETY: a zeroed cpu_set_t is an empty set, and the call only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The manifest a test runs: the base manifest with every source made absolute (the file is
/// written elsewhere), build sections dropped (the components are built already), and the extra
/// workers added with private routes.
pub fn test_manifest(options: &SpinOptions) -> Result<String> {
    let text = std::fs::read_to_string(&options.manifest)
        .with_context(|| format!("reading {}", options.manifest.display()))?;
    let mut manifest: toml::Table = text.parse()?;
    let base = options.manifest.parent().unwrap_or(Path::new("."));
    let components = manifest
        .get_mut("component")
        .and_then(toml::Value::as_table_mut)
        .context("the manifest has no components")?;
    for (id, component) in components.iter_mut() {
        let component = component.as_table_mut().context("a component is a table")?;
        component.remove("build");
        let replaced = options.sources.iter().find(|(replaced, _)| replaced == id);
        let source = match (replaced, component.get("source").and_then(toml::Value::as_str)) {
            (Some((_, wasm)), _) => Some(wasm.clone()),
            (None, Some(source)) => Some(base.join(source)),
            (None, None) => None,
        };
        if let Some(source) = source {
            component.insert("source".into(), source.display().to_string().into());
        }
    }
    for (id, copied, wasm) in &options.copies {
        let mut component = components
            .get(copied)
            .and_then(toml::Value::as_table)
            .with_context(|| format!("no component '{copied}' to copy"))?
            .clone();
        component.insert("source".into(), wasm.display().to_string().into());
        components.insert(id.clone(), component.into());
    }
    for worker in &options.extra_workers {
        let mut component = toml::Table::new();
        component.insert("source".into(), worker.wasm.display().to_string().into());
        if !worker.allowed_outbound_hosts.is_empty() {
            component.insert(
                "allowed_outbound_hosts".into(),
                toml::Value::Array(worker.allowed_outbound_hosts.iter().map(|h| h.clone().into()).collect()),
            );
        }
        if !worker.variables.is_empty() {
            let variables: toml::Table = worker
                .variables
                .iter()
                .map(|(name, value)| (name.clone(), value.clone().into()))
                .collect();
            component.insert("variables".into(), variables.into());
        }
        components.insert(worker.id.clone(), component.into());
    }
    let triggers = manifest
        .get_mut("trigger")
        .and_then(|t| t.get_mut("http"))
        .and_then(toml::Value::as_array_mut)
        .context("the manifest has no HTTP triggers")?;
    for worker in &options.extra_workers {
        let mut trigger = toml::Table::new();
        let mut route = toml::Table::new();
        route.insert("private".into(), true.into());
        trigger.insert("route".into(), route.into());
        trigger.insert("component".into(), worker.id.clone().into());
        triggers.push(trigger.into());
    }
    for (route, component) in &options.public_routes {
        let mut trigger = toml::Table::new();
        trigger.insert("route".into(), route.clone().into());
        trigger.insert("component".into(), component.clone().into());
        triggers.push(trigger.into());
    }
    Ok(toml::to_string(&manifest)?)
}

/// Reads Spin's `--format json` announcement (a JSON object over several lines) and returns the
/// address it serves; what Spin prints after it is drained in the background.
fn read_base_url(stdout: std::process::ChildStdout) -> Result<SocketAddr> {
    let mut reader = BufReader::new(stdout);
    // Everything printed so far, and the (possibly multi-line) JSON announcement, which
    // `--build`'s progress lines come before.
    let (mut printed, mut text) = (String::new(), String::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            bail!("spin exited before announcing its address; it printed: {printed}");
        }
        printed.push_str(&line);
        if text.is_empty() && !line.trim_start().starts_with('{') {
            continue;
        }
        text.push_str(&line);
        if let Ok(announcement) = serde_json::from_str::<serde_json::Value>(&text) {
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = reader.read_to_end(&mut sink);
            });
            let url = announcement["base_url"]
                .as_str()
                .with_context(|| format!("no base_url in {text}"))?;
            return url
                .strip_prefix("http://")
                .unwrap_or(url)
                .parse()
                .with_context(|| format!("base_url {url}"));
        }
    }
}

/// Starts `command` with `PR_SET_PDEATHSIG` (SIGTERM, so Spin stops its trigger process too),
/// from a thread that lives as long as the process:
/// the signal is sent when the *thread* that forked exits, so forking from a test's own thread
/// would kill Spin when that test's thread ends.
fn spawn_tied_to_this_process(mut command: Command) -> Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("spin-spawner".into())
            .spawn(move || {
                for (mut command, reply) in receiver {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawner thread starts");
        Mutex::new(sender)
    });
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let (reply, result) = mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((command, reply))
        .map_err(|_| anyhow!("spawner thread is gone"))?;
    result
        .recv()
        .map_err(|_| anyhow!("spawner thread is gone"))?
        .context("starting spin")
}
