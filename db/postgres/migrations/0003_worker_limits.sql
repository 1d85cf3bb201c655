-- The dispatcher's own table: per-worker overrides of the `rate_limits` and `breakers`
-- settings, read when `limit_overrides=database` (docs/limits.md). One row per worker, whatever
-- the case of its name (the lookup is `lower(worker) = $1`, which this index serves). Each
-- column takes what an entry of the setting takes after `worker:` (`10/s`, `100/min burst 10`,
-- `off`; `5/30s`, `off`), or NULL to keep the settings'. A row that does not parse is ignored,
-- with a warning in the dispatcher's log. Changes reach the dispatcher within
-- `domain_cache_ttl_s` (a row) or `domain_negative_ttl_s` (no row).
--
--   INSERT INTO worker_limits (worker, rate_limit) VALUES ('my-app', '10/s')
--   ON CONFLICT (worker) DO UPDATE SET rate_limit = excluded.rate_limit, updated_at = now();
CREATE TABLE IF NOT EXISTS worker_limits (
    worker text PRIMARY KEY,
    rate_limit text,
    breaker text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS worker_limits_lower_worker_key ON worker_limits (lower(worker));
