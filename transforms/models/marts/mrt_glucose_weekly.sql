{#- Metrics per patient and ISO week (Monday start, patient-local days). -#}
with

readings as (

    select * from {{ ref('fct_glucose_readings') }}

),

weekly as (

    select
        patient_id,
        {{ iso_week_start('reading_date') }} as week_start,
        count(distinct reading_date) as days_with_data,
        {{ glucose_summary_columns('glucose_value') }}
        {{ glucose_variability_columns('glucose_value', 'reading_ts_utc') }}
        100e0 * count(*) / (7 * {{ 24 * 60 }} / {{ var('cgm_interval_minutes') }}) as pct_readings_present

    from readings
    group by patient_id, {{ iso_week_start('reading_date') }}

)

select * from weekly
