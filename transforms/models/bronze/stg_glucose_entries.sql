{#- Incremental by patient-local day: each run recomputes the days that received new raw rows.
    New rows are found by `_ingested_at`; every patient's rows of those days lie within two days of
    them, so only that epoch range of the raw table is read (Parquet statistics skip the rest). -#}
with

source as (

    select * from {{ source('raw', 'glucose_entries') }}

),

{% if is_incremental() %}
new_rows as (

    select
        "date",
        patient_tz

    from source
    where _ingested_at > (select max(ingested_at) from {{ this }})

),

changed_days as (

    select distinct cast({{ epoch_ms_to_local('"date"', 'patient_tz') }} as date) as reading_date
    from new_rows

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
        cast(patient_tz as varchar) as patient_tz,
        cast(type as varchar) as entry_type,
        cast(sgv as integer) as glucose_value,
        cast("date" as bigint) as reading_epoch_ms,
        {{ epoch_ms_to_utc('"date"') }} as reading_ts_utc,
        {{ epoch_ms_to_local('"date"', 'patient_tz') }} as reading_ts_local,
        cast({{ epoch_ms_to_local('"date"', 'patient_tz') }} as date) as reading_date,
        cast(direction as varchar) as trend_direction,
        cast(noise as integer) as sensor_noise,
        cast(device as varchar) as device,
        _ingested_at as ingested_at

    from source
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
            order by ingested_at desc, entry_id desc
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
