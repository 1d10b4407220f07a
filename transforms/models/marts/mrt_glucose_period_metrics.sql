{#- Metrics over the last 14, 30 and 90 days of each patient, ending on the patient's last day with
    readings (so results do not depend on when the build runs). ADRR is the mean over the period's
    days of the daily risk range (max rl + max rh). -#}
with

readings as (

    select * from {{ ref('fct_glucose_readings') }}

),

daily as (

    select * from {{ ref('mrt_glucose_daily_metrics') }}

),

periods as (

    {% for days in var('period_days') %}
    select {{ days }} as period_days
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

patient_bounds as (

    select
        patient_id,
        max(reading_date) as period_end

    from readings
    group by patient_id

),

windows as (

    select
        patient_bounds.patient_id,
        periods.period_days,
        {{ add_days('patient_bounds.period_end', '1 - periods.period_days') }} as period_start,
        patient_bounds.period_end

    from patient_bounds
    cross join periods

),

period_readings as (

    select
        windows.period_days,
        windows.period_start,
        windows.period_end,
        readings.*

    from windows
    inner join readings
        on
            readings.patient_id = windows.patient_id
            and readings.reading_date between windows.period_start and windows.period_end

),

period_stats as (

    select
        patient_id,
        period_days,
        period_start,
        period_end,
        count(distinct reading_date) as days_with_data,
        {{ glucose_summary_columns('glucose_value') }}
        {{ glucose_variability_columns('glucose_value', 'reading_ts_utc') }}
        least(100e0, 100e0 * count(*) / (period_days * {{ 24 * 60 }} / {{ var('cgm_interval_minutes') }})) as pct_readings_present

    from period_readings
    group by patient_id, period_days, period_start, period_end

),

period_adrr as (

    select
        windows.patient_id,
        windows.period_days,
        avg(daily.daily_risk_range) as adrr

    from windows
    inner join daily
        on
            daily.patient_id = windows.patient_id
            and daily.reading_date between windows.period_start and windows.period_end
    group by windows.patient_id, windows.period_days

),

final as (

    select
        period_stats.*,
        period_adrr.adrr

    from period_stats
    left join period_adrr
        on
            period_stats.patient_id = period_adrr.patient_id
            and period_stats.period_days = period_adrr.period_days

)

select * from final
