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
