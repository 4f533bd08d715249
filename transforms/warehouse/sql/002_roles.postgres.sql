-- The warehouse's roles (PostgreSQL only), made before the tables so that the loader can own
-- them. Who may do what (deploy/DEPLOY.md, "Warehouse roles"):
--   hei_loader    what the DAGs run as: writes the pipeline's schemas (staging, core, quality,
--                 indicators, audit) and creates and alters tables there; reads mart
--   hei_engineer  reads every schema, writes nothing (910_engineer_role.postgres.sql)
--   hei_analyst   reads the mart views, nothing else (900_analyst_role.postgres.sql)
-- None of them can log in: logins are members of one (`hei grant-login KIND NAME`). The
-- administrator who applies this file (`hei warehouse-roles`: a superuser, or the database's
-- owner with CREATEROLE) owns the schemas and the mart views; the loader owns the tables.

-- Roles belong to the whole server: another database on it may have made them already. Only
-- a missing role is created, so applying this again needs no CREATEROLE (nor does the grant
-- below, once made).
do $$
declare
    name text;
begin
    foreach name in array array['hei_loader', 'hei_engineer', 'hei_analyst'] loop
        if not exists (select from pg_roles where rolname = name) then
            begin
                execute format('create role %I nologin', name);
            exception
                when duplicate_object or unique_violation then null;  -- made meanwhile
            end;
        end if;
    end loop;
end
$$;

-- The loader creates tables in its schemas and nowhere else; the schemas stay the
-- administrator's, so the loader cannot drop them (nor create a schema: no right on the
-- database).
grant usage, create on schema staging, core, quality, indicators, audit to hei_loader;

-- An administrator who is not a superuser acts as the loader to create its tables (and reads
-- them through the mart views it owns).
do $$
begin
    if not pg_has_role(current_user, 'hei_loader', 'member') then
        execute format('grant hei_loader to %I', current_user);
    end if;
end
$$;

-- Tables made before the roles (by a single pipeline user) pass to the loader, which must own
-- a table to add a column to it or ANALYZE it.
do $$
declare
    found record;
begin
    for found in
        select n.nspname, c.relname from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('staging', 'core', 'quality', 'indicators', 'audit')
          and c.relkind in ('r', 'p')
          and c.relowner <> 'hei_loader'::regrole
    loop
        execute format('alter table %I.%I owner to hei_loader', found.nspname, found.relname);
    end loop;
end
$$;
