{#- Ambulatory Glucose Profile: percentiles 5/25/50/75/95 of glucose per 5-minute patient-local time
    of day over each patient's last `agp_days` (14) complete days, on iglu's 5-minute interpolated
    grid (no interpolation across gaps > 45 minutes), unsmoothed; computed by workbench/metrics.py
    (source computed.glucose_agp) so both engines give the same exact percentiles. -#}
-- depends_on: {{ ref('glucose_computed') }}
with

profile as (

    select * from {{ source('computed', 'glucose_agp') }}

)

select * from profile
