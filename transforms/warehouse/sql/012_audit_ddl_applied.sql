-- audit.ddl_applied: the fingerprint of the DDL last applied (sql/ and the staging tables of
-- the source catalogue; see transforms/warehouse.apply_ddl). While it matches the code's,
-- tasks skip the DDL and its locks. Delete the row to have the next run apply it all again.
-- Grain: one row.
create table if not exists audit.ddl_applied (
    fingerprint varchar not null,
    applied_at timestamp not null
);
