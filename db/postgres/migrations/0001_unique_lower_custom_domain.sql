-- One project per custom domain, whatever its case. Libra's schema has no constraint at all, so
-- two projects could claim one domain (an app-level check races). The dispatcher's lookup uses
-- this index (`lower(custom_domain) IN ($1, $1 || '.')`).
--
-- CONCURRENTLY does not lock the table against writes, and cannot run inside a transaction:
-- run this file on its own (psql -f). It fails if duplicates exist already; find them with
--   SELECT lower(custom_domain), count(*) FROM project
--   WHERE custom_domain IS NOT NULL GROUP BY 1 HAVING count(*) > 1;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS project_custom_domain_lower_key
    ON project (lower(custom_domain))
    WHERE custom_domain IS NOT NULL;
