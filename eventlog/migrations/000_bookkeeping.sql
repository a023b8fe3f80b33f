-- Which migrations ran. Created first, by the migrator itself.
CREATE TABLE IF NOT EXISTS complaint_schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
