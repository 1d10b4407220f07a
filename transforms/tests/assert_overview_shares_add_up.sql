-- Every day's Low/Normal/High shares add up to 100 % and agree with the daily metrics mart.
with

overview as (

    select * from {{ ref('mrt_glucose_overview') }}

),

daily as (

    select * from {{ ref('mrt_glucose_daily_metrics') }}

),

compared as (

    select
        overview.patient_id,
        overview.reading_date,
        overview.pct_below_70 + overview.pct_in_range + overview.pct_above_180 as share_total,
        overview.pct_below_70 - daily.pct_below_70 as low_difference,
        overview.reading_count - daily.reading_count as count_difference

    from overview
    left join daily
        on
            overview.patient_id = daily.patient_id
            and overview.reading_date = daily.reading_date

)

select * from compared
where
    abs(share_total - 100) > 1e-6
    or low_difference is null
    or abs(low_difference) > 1e-6
    or count_difference != 0
