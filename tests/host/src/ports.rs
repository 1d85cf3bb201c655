//! Ports for servers that cannot be told to pick one themselves.

use anyhow::{Result, bail};

/// A port for a new server. PostgreSQL cannot be told to pick one itself, and a port that the
/// kernel handed out for `bind(0)` and was then released may be handed out again at once to
/// anyone asking the same way (a `spin up --listen 127.0.0.1:0` of another test, say). So ports
/// come from below the kernel's ephemeral range (32768 and up), where nothing is handed out
/// implicitly, in a sequence that differs per process, skipping any that are taken now.
pub fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    let start = std::process::id().wrapping_mul(7_919) % COUNT;
    for _ in 0..COUNT {
        let port = (FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port between {FIRST} and {}", FIRST + COUNT)
}
