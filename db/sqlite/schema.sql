-- The same table in Spin's built-in SQLite database (booleans are integers, timestamps text).
CREATE TABLE IF NOT EXISTS project (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    production_deploy_url TEXT,
    custom_domain TEXT,
    custom_domain_status TEXT,
    custom_domain_verified_at TEXT,
    is_active INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS project_custom_domain_lower_key
    ON project (lower(custom_domain)) WHERE custom_domain IS NOT NULL;
CREATE INDEX IF NOT EXISTS project_production_deploy_url_lower_idx
    ON project (lower(rtrim(production_deploy_url, '/'))) WHERE is_active = 1;

-- The dispatcher's own table of per-worker limit overrides (db/postgres/migrations/0003_*, and
-- docs/limits.md).
CREATE TABLE IF NOT EXISTS worker_limits (
    worker TEXT PRIMARY KEY,
    rate_limit TEXT,
    breaker TEXT,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX IF NOT EXISTS worker_limits_lower_worker_key ON worker_limits (lower(worker));
