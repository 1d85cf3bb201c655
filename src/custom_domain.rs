//! Custom domains: a tenant's own host name, mapped to its worker by the `project` table that the
//! Libra platform already keeps. The worker is the first label of the project's
//! `production_deploy_url` (`https://<worker>.<base_domain>`); the URL itself is never fetched
//! (the original proxied to it: a second hop, and an SSRF for whoever controls the column).

use crate::pipeline::worker_name::WorkerName;

/// One row at most, and always exactly one row: Spin 4.0.0-4.0.2 never return from a Postgres
/// query that yields zero rows (spinframework/spin#3671), so the lookup is wrapped in a scalar
/// subquery that gives NULL when nothing matches. `$1` is the normalised host; a stored domain
/// with a trailing dot matches too, and both forms can use the index on `lower(custom_domain)`.
/// When several projects claim a domain, the most recently verified wins.
pub const POSTGRES_LOOKUP: &str = "SELECT (SELECT production_deploy_url FROM project \
     WHERE lower(custom_domain) IN ($1, $1 || '.') AND is_active \
     AND custom_domain_status IN ('verified', 'active') \
     ORDER BY custom_domain_verified_at DESC NULLS LAST, id LIMIT 1)";

/// The same lookup for the embedded SQLite default (booleans are integers there).
pub const SQLITE_LOOKUP: &str = "SELECT (SELECT production_deploy_url FROM project \
     WHERE lower(custom_domain) IN (?1, ?1 || '.') AND is_active = 1 \
     AND custom_domain_status IN ('verified', 'active') \
     ORDER BY custom_domain_verified_at IS NULL, custom_domain_verified_at DESC, id LIMIT 1)";

/// A round trip that always returns one row, for `/health/detailed`.
pub const PING: &str = "SELECT 1";

/// The embedded SQLite database's round trip: also says whether Libra's table exists (1 or 0).
pub const SQLITE_HAS_TABLE: &str = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'project'";

/// Why a stored `production_deploy_url` was not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployUrlProblem {
    Empty,
    NotHttp,
    /// Credentials, a path, a query or a fragment: nothing but an origin is trusted.
    NotAnOrigin,
    /// Not `<label>.<base_domain>`.
    ForeignHost,
    InvalidWorkerName,
}

/// The worker a deploy URL names, if it is exactly `http(s)://<worker>.<base_domain>[:port][/]`.
pub fn worker_from_deploy_url(
    url: &str,
    base_domain: &str,
    reserved: &[String],
) -> Result<WorkerName, DeployUrlProblem> {
    let url = url.trim();
    if url.is_empty() {
        return Err(DeployUrlProblem::Empty);
    }
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or(DeployUrlProblem::NotHttp)?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', '\\']) || !authority.is_ascii() {
        return Err(DeployUrlProblem::NotAnOrigin);
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return Err(DeployUrlProblem::NotAnOrigin),
        None => authority,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let label = host
        .strip_suffix(base_domain)
        .and_then(|rest| rest.strip_suffix('.'))
        .filter(|label| !label.is_empty() && !label.contains('.'))
        .ok_or(DeployUrlProblem::ForeignHost)?;
    WorkerName::parse(label, reserved).map_err(|_| DeployUrlProblem::InvalidWorkerName)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(url: &str) -> Result<String, DeployUrlProblem> {
        worker_from_deploy_url(url, "libra.sh", &[]).map(|w| w.to_string())
    }

    #[test]
    fn follows_only_an_origin_under_the_base_domain() {
        assert_eq!(worker("https://my-app.libra.sh"), Ok("my-app".into()));
        assert_eq!(worker("https://My-App.LIBRA.sh/"), Ok("my-app".into()));
        assert_eq!(worker("http://my-app.libra.sh:8443"), Ok("my-app".into()));
        assert_eq!(worker(" https://my-app.libra.sh. "), Ok("my-app".into()));
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(worker(""), Err(DeployUrlProblem::Empty));
        assert_eq!(worker("ftp://my-app.libra.sh"), Err(DeployUrlProblem::NotHttp));
        assert_eq!(worker("my-app.libra.sh"), Err(DeployUrlProblem::NotHttp));
        for trick in [
            "https://my-app.libra.sh/x",
            "https://my-app.libra.sh?x=1",
            "https://evil.com@my-app.libra.sh",
            "https://my-app.libra.sh#x",
            "https://my-app.libra.sh:x",
            "https://my-app.libra.sh\\@evil.com",
        ] {
            assert_eq!(worker(trick), Err(DeployUrlProblem::NotAnOrigin), "{trick}");
        }
        for foreign in [
            "https://my-app.evil.com",
            "https://libra.sh",
            "https://a.b.libra.sh",
            "https://evil-libra.sh",
        ] {
            assert_eq!(worker(foreign), Err(DeployUrlProblem::ForeignHost), "{foreign}");
        }
        assert_eq!(
            worker("https://admin.libra.sh"),
            Err(DeployUrlProblem::InvalidWorkerName)
        );
        assert_eq!(worker("https://a_b.libra.sh"), Err(DeployUrlProblem::InvalidWorkerName));
    }
}
