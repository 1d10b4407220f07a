{#- Every consensus metric per patient and patient-local day. Incremental by day. -#}
with

readings as (

    select * from {{ ref('fct_glucose_readings') }}

),

{% if is_incremental() %}
changed_days as (

    select distinct reading_date
    from readings
    where ingested_at > (select max(source_ingested_at) from {{ this }})

),
{% endif %}

daily as (

    select
        patient_id,
        reading_date,
        {{ glucose_summary_columns('glucose_value') }}
        max(risk_low) + max(risk_high) as daily_risk_range,
        {{ glucose_variability_columns('glucose_value', 'reading_ts_utc') }}
        least(100e0, 100e0 * count(*) / ({{ 24 * 60 }} / {{ var('cgm_interval_minutes') }})) as pct_readings_present,
        max(ingested_at) as source_ingested_at

    from readings
    {% if is_incremental() %}
    where reading_date in (select reading_date from changed_days)
    {% endif %}
    group by patient_id, reading_date

)

select * from daily
