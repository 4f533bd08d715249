-- indicators.catalogue: the indicator catalogue (transforms/config/indicators.yml) as loaded
-- by the last compute. Grain: indicator_id. Lists are comma-separated; counts are their YAML as JSON.
create table if not exists indicators.catalogue (
    indicator_id varchar primary key,
    theme integer not null,
    title varchar not null,
    measures varchar not null,
    multiplier integer not null,
    periods varchar not null,
    breakdowns varchar not null,
    polarity varchar not null,
    reference_groups varchar not null,
    numerator varchar not null,
    denominator varchar not null,
    updated_at timestamp not null
);

-- indicators.values: what the data team queries. Exact values (never rounded) with disclosure
-- flags and the reasons behind them; partners see indicators.published through the mart.
-- Grain: indicator_id x measure x period_type x period_start x breakdown x group_code.
-- value: a percentage (4.5 = 4.5%) or a rate per the catalogue multiplier (see unit).
-- numerator/denominator: exact (person-years of a rate are a mean, so may be fractional);
-- published_*: rounded to 5, null where withheld. suppressed/suppression_reason: see
-- transforms/core/disclosure.py. ratio_*: to the reference group, CIs (95%, 99.8%) on the log scale.
-- significance_vs_*: Higher/Lower/Similar (Better/Worse with a polarity) or Not compared,
-- at 95% and 99.8% (the _998 columns). ethnicity_known_pct: % of the period's denominator
-- with a known best-known ethnicity. note: why a value is missing, if it is.
create table if not exists indicators.values (
    indicator_id varchar not null,
    measure varchar not null,
    period_type varchar not null,
    period_start date not null,
    period_end date not null,
    breakdown varchar not null,
    group_code varchar not null,
    group_label varchar not null,
    group_order integer not null,
    numerator double precision not null,
    denominator double precision not null,
    value double precision,
    lower_95 double precision,
    upper_95 double precision,
    lower_998 double precision,
    upper_998 double precision,
    unit varchar not null,
    reference_group varchar,
    ratio_to_reference double precision,
    ratio_lower_95 double precision,
    ratio_upper_95 double precision,
    ratio_lower_998 double precision,
    ratio_upper_998 double precision,
    significance_vs_reference varchar not null,
    significance_vs_reference_998 varchar not null,
    significance_vs_all varchar not null,
    significance_vs_all_998 varchar not null,
    ethnicity_known_pct double precision,
    published_numerator bigint,
    published_denominator bigint,
    suppressed boolean not null,
    suppression_reason varchar,
    reference_suppressed boolean not null,
    method varchar not null,
    note varchar,
    run_id varchar,
    computed_at timestamp not null
);

-- indicators.inputs: what each computed period was computed from (a fingerprint of the
-- catalogue entry, the loads of every month it spans and best-known ethnicity). A period is
-- recomputed only when its fingerprint changes. Grain: indicator_id x period_type x period_start.
create table if not exists indicators.inputs (
    indicator_id varchar not null,
    period_type varchar not null,
    period_start date not null,
    fingerprint varchar not null,
    computed_at timestamp not null
);

-- indicators.published: what partners see of each indicators.values row, as the compute wrote
-- it after the attacking audit (transforms/core/disclosure_audit.py) found nothing to narrow down.
-- Counts are the published ones (1-7 withheld, others rounded to 5; null where withheld);
-- value, limits, ratios and significance are recomputed from those counts alone (a DSR keeps
-- its exact value, with Dobson limits for the published count); suppression_reason is only
-- 'withheld' (counts withheld, whatever the rule) or 'unreliable' (a DSR whose published count
-- is below 15). No exact count or statistic of an exact count is stored here.
-- Grain: as indicators.values.
create table if not exists indicators.published (
    indicator_id varchar not null,
    measure varchar not null,
    period_type varchar not null,
    period_start date not null,
    period_end date not null,
    breakdown varchar not null,
    group_code varchar not null,
    group_label varchar not null,
    group_order integer not null,
    numerator bigint,
    denominator bigint,
    value double precision,
    lower_95 double precision,
    upper_95 double precision,
    lower_998 double precision,
    upper_998 double precision,
    unit varchar not null,
    reference_group varchar,
    ratio_to_reference double precision,
    ratio_lower_95 double precision,
    ratio_upper_95 double precision,
    ratio_lower_998 double precision,
    ratio_upper_998 double precision,
    significance_vs_reference varchar,
    significance_vs_reference_998 varchar,
    significance_vs_all varchar,
    significance_vs_all_998 varchar,
    ethnicity_known_pct double precision,
    suppressed boolean not null,
    suppression_reason varchar,
    reference_suppressed boolean not null,
    method varchar,
    note varchar,
    run_id varchar,
    computed_at timestamp not null
);

create schema if not exists mart;

-- mart.indicator_values: the disclosure-controlled view partners are granted: the rows of
-- indicators.published with the indicator's title.
create or replace view mart.indicator_values as
select
    p.indicator_id,
    c.title as indicator_title,
    p.measure,
    p.period_type,
    p.period_start,
    p.period_end,
    p.breakdown,
    p.group_code,
    p.group_label,
    p.group_order,
    p.numerator,
    p.denominator,
    p.value,
    p.lower_95,
    p.upper_95,
    p.lower_998,
    p.upper_998,
    p.unit,
    p.reference_group,
    p.ratio_to_reference,
    p.ratio_lower_95,
    p.ratio_upper_95,
    p.ratio_lower_998,
    p.ratio_upper_998,
    p.significance_vs_reference,
    p.significance_vs_reference_998,
    p.significance_vs_all,
    p.significance_vs_all_998,
    cast(p.ethnicity_known_pct as numeric(4, 1)) as ethnicity_known_pct,
    p.suppressed,
    p.suppression_reason,
    p.reference_suppressed,
    p.method,
    p.note,
    p.computed_at
from indicators.published as p
left join indicators.catalogue as c on c.indicator_id = p.indicator_id;
