{#- The seed's daily overview, per patient and patient-local day, in the marts' one column vocabulary
    (the seed's avg_glucose, pct_low (< 70) and pct_high (> 180) are mean_glucose, pct_below_70 and
    pct_above_180 here, as in every other mart). Incremental by day. -#}
-- depends_on: {{ ref('stg_patients') }}
with

readings as (

    select * from {{ ref('fct_glucose_readings') }}

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

daily_stats as (

    select
        patient_id,
        reading_date,
        count(*) as reading_count,
        avg(cast(glucose_value as double)) as mean_glucose,
        min(glucose_value) as min_glucose,
        max(glucose_value) as max_glucose,
        {{ pct_readings("glucose_category = 'Low'") }} as pct_below_70,
        {{ pct_readings("glucose_category = 'Normal'") }} as pct_in_range,
        {{ pct_readings("glucose_category = 'High'") }} as pct_above_180,
        max(ingested_at) as source_ingested_at

    from readings
    {% if is_incremental() %}
    where reading_date in (select reading_date from changed_days)
    {% endif %}
    group by patient_id, reading_date

)

select * from daily_stats
