-- quality.quarantine: rows that broke a row rule, with the reason. Never holds raw values of
-- identifiers: only the file, the row number, a reason code and a sentence about the field.
-- Grain: load_id x row_number.
create table if not exists quality.quarantine (
    load_id varchar not null,
    source varchar not null,
    file_name varchar not null,
    period varchar,
    row_number bigint not null,
    reason varchar not null,
    detail varchar not null
);

create index if not exists quarantine_load on quality.quarantine (load_id);
