{#- Metrics per patient and ISO week (Monday start, patient-local days). Incremental by week:
    a run recomputes the weeks that contain changed days. -#}
with

readings as (

    select * from {{ ref('fct_glucose_readings') }}

),

{% if is_incremental() %}
changed_weeks as (

    select distinct {{ iso_week_start('reading_date') }} as week_start
    from readings
    where ingested_at > (select max(source_ingested_at) from {{ this }})

),
{% endif %}

weekly as (

    select
        patient_id,
        {{ iso_week_start('reading_date') }} as week_start,
        count(distinct reading_date) as days_with_data,
        {{ glucose_summary_columns('glucose_value') }}
        {{ glucose_variability_columns('glucose_value', 'reading_ts_utc') }}
        least(100e0, 100e0 * count(*) / (7 * {{ 24 * 60 }} / {{ var('cgm_interval_minutes') }})) as pct_readings_present,
        max(ingested_at) as source_ingested_at

    from readings
    {% if is_incremental() %}
    where {{ iso_week_start('reading_date') }} in (select week_start from changed_weeks)
    {% endif %}
    group by patient_id, {{ iso_week_start('reading_date') }}

)

select * from weekly
