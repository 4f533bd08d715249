-- What the engineers and the loader may read (the roles are made by 002_roles.postgres.sql).
-- Applied after the views, so the grants cover every table and view there is.

-- hei_engineer reads every schema, now and later, and writes nothing: no right but SELECT
-- and USAGE is granted, and any other given by hand is taken back. (Creating anything is
-- refused too: 900_analyst_role.postgres.sql takes CREATE on public and TEMPORARY from
-- everyone, and no one but the administrator may create schemas.)
grant usage on schema staging, core, quality, indicators, audit, mart to hei_engineer;
grant select on all tables in schema staging, core, quality, indicators, audit, mart
    to hei_engineer;
revoke insert, update, delete, truncate, references, trigger
    on all tables in schema staging, core, quality, indicators, audit, mart from hei_engineer;
revoke create on schema staging, core, quality, indicators, audit, mart from hei_engineer;
-- Tables the loader creates later (a new release's) are readable at once.
alter default privileges for role hei_loader in schema staging, core, quality, indicators, audit
    grant select on tables to hei_engineer;

-- The loader reads the mart views (the indicator compute checks what partners will see, and
-- the release is made from them) but cannot create, replace or drop anything in mart: the
-- views are the administrator's.
grant usage on schema mart to hei_loader;
grant select on all tables in schema mart to hei_loader;
revoke create on schema mart from hei_loader;
alter default privileges in schema mart grant select on tables to hei_engineer, hei_loader;
