//! Whether a worker that is not part of this app is deployed: Libra's `project` table says so
//! when an active project's `production_deploy_url` is the worker's own origin under the base
//! domain, `https://<worker>.<base_domain>` (Libra's deploy step writes exactly that; `http`,
//! a trailing slash and any letter case are accepted too).

use crate::pipeline::worker_name::WorkerName;

/// One row, always (Spin 4.0.0-4.0.2 never return from a Postgres query that yields none): true
/// when deployed, NULL otherwise. `$1`/`$2` are the two origins, lowercase and without a
/// trailing slash; the expression matches the index of `db/postgres/migrations/0002_*`.
pub const POSTGRES_IS_DEPLOYED: &str = "SELECT (SELECT true FROM project \
     WHERE is_active AND lower(rtrim(production_deploy_url, '/')) IN ($1, $2) LIMIT 1)";

/// The same for the embedded SQLite default (booleans are integers there).
pub const SQLITE_IS_DEPLOYED: &str = "SELECT (SELECT 1 FROM project \
     WHERE is_active = 1 AND lower(rtrim(production_deploy_url, '/')) IN (?1, ?2) LIMIT 1)";

/// The `production_deploy_url` values that mean `worker` is deployed, in the normal form the
/// queries compare against: `http://<worker>.<base_domain>` and `https://…`.
pub fn deploy_urls(worker: &WorkerName, base_domain: &str) -> [String; 2] {
    let host = [worker.as_str(), ".", base_domain].concat();
    [["http://", &host].concat(), ["https://", &host].concat()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(name: &str) -> WorkerName {
        WorkerName::parse(name, &[]).unwrap()
    }

    #[test]
    fn deploy_urls_are_both_schemes_of_the_worker_origin() {
        assert_eq!(
            deploy_urls(&worker("shop-worker"), "libra.sh"),
            [
                "http://shop-worker.libra.sh".to_string(),
                "https://shop-worker.libra.sh".to_string()
            ]
        );
    }
}
