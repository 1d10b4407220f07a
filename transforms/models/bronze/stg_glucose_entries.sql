{#- Incremental by patient-local day: each run recomputes the days that received new raw rows.
    New rows are found by `ingested_at`; every patient's rows of those days lie within two days of
    them, so only that epoch range of the raw table is read (Parquet statistics skip the rest: the
    bounds are inlined as literals, macro query_literal).

    Days are cut in the patient's zone from raw.patients (one source of truth, from sites.yaml).
    A row's `ingested_at` is the later of its own ingestion and the landing of its patient's current
    zone (`time_zone_since`): a corrected zone makes all that patient's rows new, so this model and
    every incremental model after it recompute that patient's days — the new cut's days, and the old
    cut's days still in this table. -#}
-- depends_on: {{ ref('stg_patients') }}
with

source as (

    select * from {{ source('raw', 'glucose_entries') }}

),

patients as (

    select
        cast(patient_id as varchar) as patient_id,
        cast(time_zone as varchar) as time_zone,
        time_zone_since

    from {{ source('raw', 'patients') }}

),

located as (

    select
        source.*,
        -- a patient without a raw.patients row (never configured) keeps its stamped zone, so its rows
        -- still reach silver and fail the relationships test there instead of vanishing here
        coalesce(patients.time_zone, cast(source.patient_tz as varchar)) as time_zone,
        case
            when patients.time_zone_since > source._ingested_at then patients.time_zone_since  -- (null: never)
            else source._ingested_at
        end as located_at,
        patients.time_zone_since

    from source
    left join patients
        on cast(source.patient_id as varchar) = patients.patient_id

),

{% if is_incremental() %}
{#- the bounds as literals (macro query_literal), so that the raw scan skips the files and row groups
    outside them: the model's high-water mark, and the epoch range of the rows that landed since -#}
{%- set since = query_literal('select max(ingested_at) from ' ~ this) -%}
{%- set landed -%}
    select "date"
    from {{ source('raw', 'glucose_entries') }}
    where _ingested_at > {{ since }} or cast(patient_id as varchar) in (
        select cast(patient_id as varchar) from {{ source('raw', 'patients') }} where time_zone_since > {{ since }}
    )
{%- endset -%}
{%- set first_ms = query_literal('select min("date") - 2 * 86400000 from (' ~ landed ~ ') as landed') -%}
{%- set last_ms = query_literal('select max("date") + 2 * 86400000 from (' ~ landed ~ ') as landed') -%}
new_rows as (

    -- located_at > since, split so that each side is a plain filter: rows that landed since, and
    -- the rows of a patient whose zone landed since
    select
        "date",
        time_zone

    from located
    where _ingested_at > {{ since }}

    union all

    select
        "date",
        time_zone

    from located
    where time_zone_since > {{ since }}

),

changed_days as (

    select distinct cast({{ epoch_ms_to_local('"date"', 'time_zone') }} as date) as reading_date
    from new_rows

    union

    -- a corrected zone: the days of the old cut, so that they are replaced too
    {{ recut_keys() }}

),

{% endif %}

renamed as (

    select
        cast(_id as varchar) as entry_id,
        cast(patient_id as varchar) as patient_id,
        cast(site_id as varchar) as site_id,
        time_zone as patient_tz,
        cast(type as varchar) as entry_type,
        cast(sgv as integer) as glucose_value,
        cast("date" as bigint) as reading_epoch_ms,
        {{ epoch_ms_to_utc('"date"') }} as reading_ts_utc,
        {{ epoch_ms_to_local('"date"', 'time_zone') }} as reading_ts_local,
        cast({{ epoch_ms_to_local('"date"', 'time_zone') }} as date) as reading_date,
        cast(direction as varchar) as trend_direction,
        cast(noise as integer) as sensor_noise,
        cast(device as varchar) as device,
        _ingested_at as source_ingested_at,
        located_at as ingested_at

    from located
    {% if is_incremental() %}
    where "date" between {{ first_ms }} and {{ last_ms }}
    {% endif %}

),

valid as (

    select *
    from renamed
    where
        entry_type = 'sgv'
        and glucose_value between {{ var('glucose_min_valid') }} and {{ var('glucose_max_valid') }}
        and reading_epoch_ms is not null
        and patient_id is not null
        and patient_tz is not null
        {% if is_incremental() %}
        and reading_date in (select reading_date from changed_days)
        {% endif %}

),

ranked as (

    select
        *,
        row_number() over (
            partition by patient_id, reading_epoch_ms
            order by source_ingested_at desc, entry_id desc
        ) as duplicate_rank

    from valid

),

deduplicated as (

    select
        entry_id,
        patient_id,
        site_id,
        patient_tz,
        glucose_value,
        reading_epoch_ms,
        reading_ts_utc,
        reading_ts_local,
        reading_date,
        trend_direction,
        sensor_noise,
        device,
        ingested_at

    from ranked
    where duplicate_rank = 1

)

select * from deduplicated
