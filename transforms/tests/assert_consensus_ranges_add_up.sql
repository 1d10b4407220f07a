-- The five consensus ranges partition the readings of every patient-day.
with

daily as (

    select * from {{ ref('mrt_glucose_daily_metrics') }}

)

select * from daily
where abs(pct_very_low + pct_low + pct_in_range + pct_high + pct_very_high - 100) > 1e-6
