{#- One row per hypo- or hyperglycaemic episode (Battelino 2023 consensus definitions, computed as
    iglu's episode_calculation on the 5-minute grid by workbench/metrics.py), complete days only. -#}
-- depends_on: {{ ref('glucose_computed') }}
with

episodes as (

    select * from {{ source('computed', 'glucose_episodes') }}

),

patients as (

    select patient_id, time_zone from {{ ref('dim_patient') }}

),

final as (

    select
        episodes.patient_id,
        episodes.episode_type,
        episodes.episode_level,
        episodes.is_exclusive,
        episodes.start_ts_utc,
        episodes.end_ts_utc,
        episodes.duration_minutes,
        episodes.extreme_glucose,
        episodes.mean_glucose,
        episodes.reading_count,
        patients.time_zone

    from episodes
    left join patients
        on episodes.patient_id = patients.patient_id

)

select * from final
