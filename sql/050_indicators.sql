-- indicators.catalogue: the indicator catalogue (config/indicators.yml) as loaded by the last
-- compute. Grain: indicator_id. Lists are comma-separated; counts are their YAML as JSON.
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

-- indicators.values: what analysts query. Exact values (never rounded) with disclosure flags.
-- Grain: indicator_id x measure x period_type x period_start x breakdown x group_code.
-- value: a percentage (4.5 = 4.5%) or a rate per the catalogue multiplier (see unit).
-- numerator/denominator: exact (person-years of a rate are a mean, so may be fractional);
-- published_*: rounded to 5, null where withheld. suppressed/suppression_reason: see
-- transforms/disclosure.py. ratio_*: to the reference group, CIs (95%, 99.8%) on the log scale.
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

create schema if not exists mart;

-- mart.indicator_values: the disclosure-controlled view partners are granted. Counts are the
-- published (rounded, suppressed) ones; every derived value of a suppressed row is withheld,
-- with its method and note (they would say whether the count is below 10); the ratio to a
-- withheld reference group is withheld (with the row's value it would give that group away);
-- linkage completeness is shown to one decimal place, and withheld where the Not stated or
-- Not known count of the same indicator and period is (it would reveal their sum).
create or replace view mart.indicator_values as
select
    v.indicator_id,
    c.title as indicator_title,
    v.measure,
    v.period_type,
    v.period_start,
    v.period_end,
    v.breakdown,
    v.group_code,
    v.group_label,
    v.group_order,
    v.published_numerator as numerator,
    v.published_denominator as denominator,
    case when v.suppressed then null else v.value end as value,
    case when v.suppressed then null else v.lower_95 end as lower_95,
    case when v.suppressed then null else v.upper_95 end as upper_95,
    case when v.suppressed then null else v.lower_998 end as lower_998,
    case when v.suppressed then null else v.upper_998 end as upper_998,
    v.unit,
    v.reference_group,
    case when v.suppressed or v.reference_suppressed then null
        else v.ratio_to_reference end as ratio_to_reference,
    case when v.suppressed or v.reference_suppressed then null
        else v.ratio_lower_95 end as ratio_lower_95,
    case when v.suppressed or v.reference_suppressed then null
        else v.ratio_upper_95 end as ratio_upper_95,
    case when v.suppressed or v.reference_suppressed then null
        else v.ratio_lower_998 end as ratio_lower_998,
    case when v.suppressed or v.reference_suppressed then null
        else v.ratio_upper_998 end as ratio_upper_998,
    case when v.suppressed or v.reference_suppressed then null
        else v.significance_vs_reference end as significance_vs_reference,
    case when v.suppressed or v.reference_suppressed then null
        else v.significance_vs_reference_998 end as significance_vs_reference_998,
    case when v.suppressed then null else v.significance_vs_all end as significance_vs_all,
    case when v.suppressed then null else v.significance_vs_all_998 end
        as significance_vs_all_998,
    case when exists (
        select 1 from indicators.values as u
        where u.indicator_id = v.indicator_id and u.measure = v.measure
          and u.period_type = v.period_type and u.period_start = v.period_start
          and u.breakdown = 'ethnicity_5' and u.group_code in ('not_stated', 'not_known')
          and u.suppressed
    ) then null else cast(v.ethnicity_known_pct as numeric(4, 1)) end as ethnicity_known_pct,
    v.suppressed,
    v.suppression_reason,
    v.reference_suppressed,
    case when v.suppressed then null else v.method end as method,
    case when v.suppressed then null else v.note end as note,
    v.computed_at
from indicators.values as v
left join indicators.catalogue as c on c.indicator_id = v.indicator_id;
