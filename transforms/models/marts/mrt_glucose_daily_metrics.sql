{#- Every consensus metric per patient and patient-local day. Incremental by day. Each metric is
    computed once, by workbench/metrics.py (source computed.glucose_metrics_daily); this model adds
    only the share of readings present and the newest ingestion time of the day's readings. -#}
-- depends_on: {{ ref('glucose_computed') }}
-- depends_on: {{ ref('stg_patients') }}
with

readings as (

    select * from {{ ref('fct_glucose_readings') }}

),

computed as (

    select * from {{ source('computed', 'glucose_metrics_daily') }}

),

{% if is_incremental() %}
changed_days as (

    select distinct reading_date
    from readings
    where ingested_at > (select max(source_ingested_at) from {{ this }})

    union

    -- a corrected zone: the patient's days of the old cut, so that one left empty is replaced too
    {{ recut_keys() }}

),
{% endif %}

daily as (

    select
        patient_id,
        reading_date,
        least(100e0, 100e0 * count(*) / ({{ 24 * 60 }} / {{ var('cgm_interval_minutes') }})) as pct_readings_present,
        max(ingested_at) as source_ingested_at

    from readings
    {% if is_incremental() %}
    where reading_date in (select reading_date from changed_days)
    {% endif %}
    group by patient_id, reading_date

),

final as (

    select
        daily.patient_id,
        daily.reading_date,
        cast(computed.reading_count as bigint) as reading_count,
        {{ reading_metric_columns('computed') }}
        computed.adrr as daily_risk_range,
        daily.pct_readings_present,
        daily.source_ingested_at,
        computed.min_glucose,
        computed.q1_glucose,
        computed.median_glucose,
        computed.q3_glucose,
        computed.max_glucose,
        computed.range_glucose,
        computed.iqr_glucose,
        computed.pct_63_140,
        computed.pct_above_140,
        computed.grade,
        computed.grade_hypo,
        computed.grade_eugly,
        computed.grade_hyper,
        computed.m_value,
        computed.mad,
        computed.cogi,
        computed.hyper_index,
        computed.hypo_index,
        computed.igc,
        computed.active_percent,
        computed.mage,
        computed.modd,
        computed.conga_1,
        computed.mag,
        computed.gvp,
        computed.sd_roc,
        computed.auc_hourly,
        computed.sd_ws_h,
        computed.hypo_lv1_per_day,
        computed.hypo_lv2_per_day,
        computed.hypo_extended_per_day,
        computed.hyper_lv1_per_day,
        computed.hyper_lv2_per_day,
        computed.hypo_lv1_excl_per_day,
        computed.hyper_lv1_excl_per_day

    from daily
    left join computed
        on
            daily.patient_id = computed.patient_id
            and daily.reading_date = computed.reading_date

)

select * from final
