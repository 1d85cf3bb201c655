-- Remote workers: the dispatcher asks whether a name is deployed with
--   lower(rtrim(production_deploy_url, '/')) IN ('http://<worker>.<base>', 'https://<worker>.<base>')
-- on active projects (src/membership.rs). Libra's schema has no index on the column, so without
-- this every cold lookup scans the table. Partial, on the exact expression the query uses.
--
-- CONCURRENTLY does not lock the table against writes and cannot run inside a transaction: run
-- this file on its own (psql -f).
CREATE INDEX CONCURRENTLY IF NOT EXISTS project_production_deploy_url_lower_idx
    ON project (lower(rtrim(production_deploy_url, '/')))
    WHERE is_active;
