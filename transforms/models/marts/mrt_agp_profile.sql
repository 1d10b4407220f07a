{#- Ambulatory Glucose Profile: percentiles of glucose by patient-local time of day (15-minute
    bins) over each patient's last `agp_days` days with readings (14 by consensus). -#}
with

readings as (

    select * from {{ ref('fct_glucose_readings') }}

),

patient_bounds as (

    select
        patient_id,
        max(reading_date) as period_end

    from readings
    group by patient_id

),

recent as (

    select
        readings.patient_id,
        readings.glucose_value,
        cast(floor(readings.reading_minute_of_day / 15e0) * 15 as integer) as minute_of_day,
        patient_bounds.period_end

    from readings
    inner join patient_bounds
        on readings.patient_id = patient_bounds.patient_id
    where readings.reading_date > {{ add_days('patient_bounds.period_end', - var('agp_days')) }}

),

profile as (

    select
        patient_id,
        minute_of_day,
        {{ var('agp_days') }} as period_days,
        period_end,
        count(*) as reading_count,
        round({{ percentile('glucose_value', 0.05) }}, 1) as p05,
        round({{ percentile('glucose_value', 0.25) }}, 1) as p25,
        round({{ percentile('glucose_value', 0.50) }}, 1) as p50,
        round({{ percentile('glucose_value', 0.75) }}, 1) as p75,
        round({{ percentile('glucose_value', 0.95) }}, 1) as p95

    from recent
    group by patient_id, minute_of_day, period_end

)

select * from profile
