-- The part of Libra's `project` table that the dispatcher reads (Libra's Drizzle schema has more
-- columns: user_id, organization_id, custom_hostname_id, ssl_status, timestamps, ...). Apply it
-- only to a database that does not have the table yet; an existing Libra database already does.
CREATE TABLE IF NOT EXISTS project (
    id text PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    production_deploy_url text,
    custom_domain text,
    -- pending | verified | active | failed; verified and active are served
    custom_domain_status varchar,
    custom_domain_verified_at timestamptz,
    is_active boolean NOT NULL DEFAULT true
);
