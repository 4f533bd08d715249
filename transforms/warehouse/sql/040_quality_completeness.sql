-- quality.ethnicity_completeness: how completely ethnicity is recorded.
-- Grain: source x period x organisation x basis. basis = 'recorded' (as the source sent it)
-- or 'linked' (after best-known linkage through core.person_ethnicity). pct_known is known /
-- records x 100. not_stated = Z (asked, declined); not_known = 99 or blank; invalid =
-- anything else (treated as not known in rates).
create table if not exists quality.ethnicity_completeness (
    source varchar not null,
    period varchar not null,
    organisation varchar not null,
    basis varchar not null,
    records bigint not null,
    known bigint not null,
    not_stated bigint not null,
    not_known bigint not null,
    invalid bigint not null,
    pct_known double precision not null,
    threshold double precision not null,
    below_threshold boolean not null,
    computed_at timestamp not null
);

-- quality.warnings: data-quality warnings raised by loads (ethnicity completeness below the
-- source's threshold). Grain: one warning per load and kind.
create table if not exists quality.warnings (
    load_id varchar not null,
    run_id varchar,
    source varchar not null,
    period varchar,
    kind varchar not null,
    message varchar not null,
    raised_at timestamp not null
);

-- quality.validation_runs: every Great Expectations suite run on a delivery.
-- Grain: load_id x suite.
create table if not exists quality.validation_runs (
    load_id varchar not null,
    source varchar not null,
    file_name varchar not null,
    period varchar,
    suite varchar not null,
    success boolean not null,
    evaluated bigint not null,
    successful bigint not null,
    rows_validated bigint not null,
    statistics varchar not null,
    failed_expectations varchar not null,
    validated_at timestamp not null
);
