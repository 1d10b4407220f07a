with

readings as (

    select * from {{ ref('fct_glucose_readings') }}

),

bounds as (

    select
        min(reading_date) as first_date,
        max(reading_date) as last_date

    from readings

),

spine as (

    {{ date_spine('(select first_date from bounds)', '(select last_date from bounds)') }}

),

dates as (

    select
        date_day,
        cast(extract(year from date_day) as integer) as year_number,
        cast(extract(quarter from date_day) as integer) as quarter_number,
        cast(extract(month from date_day) as integer) as month_number,
        cast(extract(day from date_day) as integer) as day_of_month,
        {{ iso_day_of_week('date_day') }} as iso_day_of_week,
        cast(extract(week from date_day) as integer) as iso_week_number,
        {{ iso_week_start('date_day') }} as iso_week_start,
        {{ iso_day_of_week('date_day') }} in (6, 7) as is_weekend

    from spine

)

select * from dates
