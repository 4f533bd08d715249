-- audit.file_loads: one row per landing-zone file per load attempt that reached a decision.
-- Grain: load_id. Invariant for every row: rows_read = rows_loaded + rows_quarantined.
-- status: loaded | rejected | unchanged | superseded (a loaded file later replaced by a
-- resubmission of the same source-month) | in_progress (still arriving, or changed while it
-- was read: nothing loaded, planned again by the next run).
create table if not exists audit.file_loads (
    load_id varchar primary key,
    source varchar not null,
    file_name varchar not null,
    period varchar,
    sha256 varchar not null,
    status varchar not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    error varchar,
    extra_columns varchar,
    file_modified_at timestamp,
    started_at timestamp not null,
    finished_at timestamp not null,
    run_id varchar
);
