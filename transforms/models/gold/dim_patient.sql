with

patients as (

    select * from {{ ref('stg_patients') }}

),

readings as (

    select * from {{ ref('fct_glucose_readings') }}

),

reading_stats as (

    select
        patient_id,
        min(reading_date) as first_reading_date,
        max(reading_date) as last_reading_date,
        count(*) as reading_count

    from readings
    group by patient_id

),

joined as (

    select
        patients.patient_id,
        patients.display_name,
        patients.time_zone,
        patients.site_id,
        patients.site_url,
        reading_stats.first_reading_date,
        reading_stats.last_reading_date,
        coalesce(reading_stats.reading_count, 0) as reading_count

    from patients
    left join reading_stats
        on patients.patient_id = reading_stats.patient_id

)

select * from joined
