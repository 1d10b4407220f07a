with

source as (

    select * from {{ source('raw', 'patients') }}

),

renamed as (

    select
        cast(patient_id as varchar) as patient_id,
        cast(display_name as varchar) as display_name,
        cast(time_zone as varchar) as time_zone,
        time_zone_since,
        cast(site_id as varchar) as site_id,
        cast(site_url as varchar) as site_url

    from source

)

select * from renamed
