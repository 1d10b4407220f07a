with

source as (

    select * from {{ source('raw', 'treatments') }}

),

{#- local times in the patient's zone from raw.patients (the one source, as in stg_glucose_entries) -#}
patients as (

    select
        cast(patient_id as varchar) as patient_id,
        cast(time_zone as varchar) as time_zone

    from {{ source('raw', 'patients') }}

),

located as (

    select
        source.*,
        -- a patient without a raw.patients row (never configured) keeps its stamped zone, so its rows
        -- still reach silver and fail the relationships test there instead of vanishing here
        coalesce(patients.time_zone, cast(source.patient_tz as varchar)) as time_zone

    from source
    left join patients
        on cast(source.patient_id as varchar) = patients.patient_id

),

renamed as (

    select
        cast(_id as varchar) as treatment_id,
        cast(patient_id as varchar) as patient_id,
        cast(site_id as varchar) as site_id,
        time_zone as patient_tz,
        cast(event_type as varchar) as event_type,
        coalesce({{ epoch_ms_to_utc('"date"') }}, {{ iso_to_utc('created_at') }}) as treatment_ts_utc,
        cast(insulin as double) as insulin_units,
        cast(carbs as double) as carbs_grams,
        cast(duration as double) as duration_minutes,
        cast(absolute as double) as basal_rate_absolute,
        cast(rate as double) as basal_rate,
        cast(notes as varchar) as notes,
        cast(entered_by as varchar) as entered_by,
        _ingested_at as ingested_at

    from located

),

localized as (

    select
        *,
        {{ epoch_ms_to_local(epoch_seconds('treatment_ts_utc') ~ ' * 1000', 'patient_tz') }} as treatment_ts_local

    from renamed
    where treatment_ts_utc is not null and patient_id is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by patient_id, treatment_id
            order by ingested_at desc
        ) as duplicate_rank

    from localized

),

deduplicated as (

    select
        treatment_id,
        patient_id,
        site_id,
        patient_tz,
        event_type,
        treatment_ts_utc,
        treatment_ts_local,
        cast(treatment_ts_local as date) as treatment_date,
        insulin_units,
        carbs_grams,
        duration_minutes,
        basal_rate_absolute,
        basal_rate,
        notes,
        entered_by,
        ingested_at

    from ranked
    where duplicate_rank = 1

)

select * from deduplicated
