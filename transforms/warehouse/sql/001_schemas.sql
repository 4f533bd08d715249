-- Schemas of the warehouse. Applied idempotently by every pipeline run.
create schema if not exists staging;
create schema if not exists core;
create schema if not exists quality;
create schema if not exists indicators;
create schema if not exists audit;
