{#- Insulin and carbohydrates per patient and patient-local day from Nightscout treatments:
    boluses are treatments carrying insulin units (Meal Bolus, Correction Bolus, Bolus, ...); basal
    insulin comes from 'Temp Basal' events as rate (absolute when given) × duration. -#}
with

treatments as (

    select * from {{ ref('stg_treatments') }}

),

classified as (

    select
        patient_id,
        treatment_date,
        event_type = 'Temp Basal' as is_basal,
        case when event_type = 'Temp Basal' then null else insulin_units end as bolus_units,
        case
            when event_type = 'Temp Basal'
                then coalesce(basal_rate_absolute, basal_rate) * duration_minutes / 60e0
        end as basal_units,
        carbs_grams

    from treatments

),

daily as (

    select
        patient_id,
        treatment_date,
        coalesce(sum(bolus_units), 0e0) as bolus_units,
        coalesce(sum(basal_units), 0e0) as basal_units,
        coalesce(sum(bolus_units), 0e0) + coalesce(sum(basal_units), 0e0) as total_insulin_units,
        coalesce(sum(carbs_grams), 0e0) as carbs_grams,
        cast(sum(case when bolus_units > 0 then 1 else 0 end) as bigint) as bolus_count,
        count(*) as treatment_count

    from classified
    group by patient_id, treatment_date

)

select * from daily
