-- AGP percentiles are ordered within every time-of-day bin.
with

profile as (

    select * from {{ ref('mrt_agp_profile') }}

)

select * from profile
where not (p05 <= p25 and p25 <= p50 and p50 <= p75 and p75 <= p95)
