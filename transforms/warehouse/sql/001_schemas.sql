-- Schemas of the warehouse. Applied idempotently by every pipeline run, before the tables
-- (declared in transforms/warehouse/tables.py) and the views (transforms/warehouse/views.py).
create schema if not exists staging;
create schema if not exists core;
create schema if not exists quality;
create schema if not exists indicators;
create schema if not exists audit;
-- mart: the views partners are granted (see 900_analyst_role.postgres.sql).
create schema if not exists mart;
