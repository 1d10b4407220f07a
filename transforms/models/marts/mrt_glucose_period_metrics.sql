{#- Every metric (iglu's full set, the consensus metrics, episode rates, data sufficiency) per patient
    over the last 14, 30 and 90 complete patient-local days and the whole history ('all'), computed by
    workbench/metrics.py (see source computed.glucose_metrics_period). The current partial day is
    not part of any period. -#}
-- depends_on: {{ ref('glucose_computed') }}
with

period_metrics as (

    select * from {{ source('computed', 'glucose_metrics_period') }}

)

select * from period_metrics
