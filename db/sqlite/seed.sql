-- Example data for a local run:
--   spin up --build --sqlite @db/sqlite/schema.sql --sqlite @db/sqlite/seed.sql
--   curl -H 'Host: shop.example.com' http://127.0.0.1:3000/    # the hello worker
INSERT OR REPLACE INTO project
    (id, name, production_deploy_url, custom_domain, custom_domain_status, custom_domain_verified_at, is_active)
VALUES
    ('example-shop', 'Shop', 'http://hello.localhost:3000', 'shop.example.com', 'active', '2026-01-01T00:00:00Z', 1),
    ('example-api', 'API', 'http://echo.localhost:3000', 'api.example.com', 'verified', '2026-01-01T00:00:00Z', 1);
