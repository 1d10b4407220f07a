{#- Incremental by patient-local day: each run recomputes the days that received new raw rows.
    New rows are found by `ingested_at`; every patient's rows of those days lie within two days of
    them, so only that epoch range of the raw table is read (Parquet statistics skip the rest).

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
        end as located_at

    from source
    left join patients
        on cast(source.patient_id as varchar) = patients.patient_id

),

{% if is_incremental() %}
new_rows as (

    select
        "date",
        time_zone

    from located
    where located_at > (select max(ingested_at) from {{ this }})

),

changed_days as (

    select distinct cast({{ epoch_ms_to_local('"date"', 'time_zone') }} as date) as reading_date
    from new_rows

    union

    -- a corrected zone: the days of the old cut, so that they are replaced too
    {{ recut_keys() }}

),

epoch_window as (

    select
        min("date") - 2 * 86400000 as first_ms,
        max("date") + 2 * 86400000 as last_ms

    from new_rows

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
    where "date" between (select first_ms from epoch_window) and (select last_ms from epoch_window)
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
