-- core.dim_ethnicity: NHS ETHNIC CATEGORY codes with their 16- and 5-group labels (NHS Data
-- Dictionary 2001 headings: Chinese R is in "Other ethnic group"). Grain: ethnic_code.
-- Refreshed from transforms/core/reference/ethnic_category_codes.csv by every run.
create table if not exists core.dim_ethnicity (
    ethnic_code varchar primary key,
    description varchar not null,
    group_16 varchar not null,
    group_5 varchar not null,
    group_16_order integer not null,
    is_known boolean not null
);

-- core.person_ethnicity: each person's best-known ethnicity over all data loaded so far.
-- A known code in the GP register first (latest snapshot with one); else the most recent
-- known code from secondary care (A&E, inpatients, outpatients); else Z if the register says
-- Z; else 99. Grain: person_id.
create table if not exists core.person_ethnicity (
    person_id varchar primary key,
    ethnic_code varchar not null,
    source varchar not null,
    recorded_on date,
    computed_at timestamp not null
);
