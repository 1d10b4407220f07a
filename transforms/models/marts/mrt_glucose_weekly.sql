{#- Metrics per patient and ISO week (Monday start, patient-local days). Incremental by week:
    a run recomputes the weeks that contain changed days. Each metric is computed once, by
    workbench/metrics.py (source computed.glucose_metrics_weekly); this model adds only the share of
    readings present and the newest ingestion time of the week's readings. -#}
-- depends_on: {{ ref('glucose_computed') }}
-- depends_on: {{ ref('stg_patients') }}
with

readings as (

    select * from {{ ref('fct_glucose_readings') }}

),

computed as (

    select * from {{ source('computed', 'glucose_metrics_weekly') }}

),

{% if is_incremental() %}
changed_weeks as (

    select distinct {{ iso_week_start('reading_date') }} as week_start
    from readings
    where ingested_at > (select max(source_ingested_at) from {{ this }})

    union

    -- a corrected zone: the patient's weeks of the old cut, so that one left empty is replaced too
    {{ recut_keys() }}

),
{% endif %}

weekly as (

    select
        patient_id,
        {{ iso_week_start('reading_date') }} as week_start,
        least(100e0, 100e0 * count(*) / (7 * {{ 24 * 60 }} / {{ var('cgm_interval_minutes') }})) as pct_readings_present,
        max(ingested_at) as source_ingested_at

    from readings
    {% if is_incremental() %}
    where {{ iso_week_start('reading_date') }} in (select week_start from changed_weeks)
    {% endif %}
    group by patient_id, {{ iso_week_start('reading_date') }}

),

final as (

    select
        weekly.patient_id,
        weekly.week_start,
        cast(computed.days_with_data as bigint) as days_with_data,
        cast(computed.reading_count as bigint) as reading_count,
        {{ reading_metric_columns('computed') }}
        weekly.pct_readings_present,
        weekly.source_ingested_at,
        computed.mage,
        computed.modd,
        computed.conga_1,
        computed.conga_24,
        computed.mag,
        computed.gvp,
        computed.sd_roc,
        computed.cv_mean,
        computed.cv_sd,
        computed.auc_hourly,
        computed.sd_w,
        computed.sd_hhmm,
        computed.sd_ws_h,
        computed.sd_dm,
        computed.sd_b,
        computed.sd_b_dm

    from weekly
    left join computed
        on
            weekly.patient_id = computed.patient_id
            and weekly.week_start = computed.week_start

)

select * from final
