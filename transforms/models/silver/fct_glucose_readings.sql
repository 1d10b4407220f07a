{#- Incremental by patient-local day (cut in the patient's zone from raw.patients, see
    stg_glucose_entries). Window values (rolling average, rate of change) need the readings just
    before a recomputed day, so `incremental_lookback_days` of history are read and then filtered out
    again. -#}
-- depends_on: {{ ref('stg_patients') }}
with

readings as (

    select * from {{ ref('stg_glucose_entries') }}

),

{% if is_incremental() %}
{#- the bounds as literals (macro query_literal), so that the scans of bronze skip the files and row
    groups outside them: the model's high-water mark, and the first day the window values need -#}
{%- set since = query_literal('select max(ingested_at) from ' ~ this) -%}
{%- set changed -%}
    select reading_date from {{ ref('stg_glucose_entries') }} where ingested_at > {{ since }}
    union all
    {{ recut_keys() }}
{%- endset -%}
{%- set first_day = query_literal(
    'select ' ~ add_days('min(reading_date)', - var('incremental_lookback_days')) ~ ' from (' ~ changed ~ ') as changed'
) -%}
changed_days as (

    select distinct reading_date
    from readings
    where ingested_at > {{ since }}

    union

    -- a corrected zone (bronze stamped that patient's re-cut rows as new): the old cut's days too
    {{ recut_keys() }}

),

in_scope as (

    select *
    from readings
    where reading_date >= {{ first_day }}

),
{% else %}
in_scope as (

    select * from readings

),
{% endif %}

windowed as (

    select
        *,
        avg(cast(glucose_value as double)) over (
            partition by patient_id
            order by reading_ts_utc
            rows between 2 preceding and current row
        ) as rolling_avg_3,
        lag(glucose_value) over (partition by patient_id order by reading_ts_utc) as previous_glucose_value,
        lag(reading_ts_utc) over (partition by patient_id order by reading_ts_utc) as previous_reading_ts_utc

    from in_scope

),

enriched as (

    select
        entry_id as reading_id,
        patient_id,
        site_id,
        patient_tz,
        glucose_value,
        reading_ts_utc,
        reading_ts_local,
        reading_date,
        {{ hour_of('reading_ts_local') }} as reading_hour,
        {{ minute_of_day('reading_ts_local') }} as reading_minute_of_day,
        {{ glucose_category('glucose_value') }} as glucose_category,
        {{ glucose_range('glucose_value') }} as glucose_range,
        glucose_value between {{ glucose_limit('low') }} and {{ glucose_limit('tight_high') }} as is_tight_range,
        {{ risk_low('glucose_value') }} as risk_low,
        {{ risk_high('glucose_value') }} as risk_high,
        rolling_avg_3,
        case
            when
                {{ epoch_seconds('reading_ts_utc') }} - {{ epoch_seconds('previous_reading_ts_utc') }}
                between 1 and {{ var('rate_of_change_max_gap_minutes') * 60 }}
                then (glucose_value - previous_glucose_value) * 60e0
                / ({{ epoch_seconds('reading_ts_utc') }} - {{ epoch_seconds('previous_reading_ts_utc') }})
        end as rate_of_change,
        trend_direction,
        device,
        ingested_at

    from windowed
    {% if is_incremental() %}
    where reading_date in (select reading_date from changed_days)
    {% endif %}

)

select * from enriched
