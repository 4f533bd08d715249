-- hei_analyst: the partner analysts' role (made by 002_roles.postgres.sql). It reads the
-- disclosure-controlled views in `mart` and nothing else. PostgreSQL only (DuckDB has no
-- roles): files named *.postgres.sql are skipped on DuckDB. Applied after the tables and views
-- (transforms/warehouse/ddl.py), so the grants cover every view.
-- `hei grant-login analyst NAME` makes a login in this role (transforms/warehouse/logins.py).
--
-- The views run with their owner's rights (PostgreSQL's default; never set security_invoker
-- on them): their owner, the administrator, reads the tables behind them, so the analyst
-- needs no right on those tables and sees only what the views show.

-- Every view in mart, now and later: whatever a view there is called, and however it is
-- rewritten, the grant is on the schema's contents, not on named views.
grant usage on schema mart to hei_analyst;
grant select on all tables in schema mart to hei_analyst;
alter default privileges in schema mart grant select on tables to hei_analyst;

-- Nothing else. No right is granted on the pipeline's own schemas; this takes back any given
-- by hand, to the role or to everyone.
revoke all on schema staging, core, quality, indicators, audit from public, hei_analyst;
revoke all on all tables in schema staging, core, quality, indicators, audit
    from public, hei_analyst;

-- No table anywhere: PostgreSQL before 15 lets everyone create in schema public, and every
-- version lets everyone create temporary tables (and functions) in a database. Only the
-- owner of the database and of schema public can take these back; for anyone else REVOKE
-- is a warning, not an error.
revoke create on schema public from public;
do $$
begin
    execute format('revoke temporary on database %I from public', current_database());
end
$$;
