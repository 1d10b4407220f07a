"""The seed's transforms (stg_glucose_entries -> fct_glucose_readings -> mrt_glucose_overview, from
/work/shared/seed: the original Trino/dbt SQL) run by plain DuckDB over the raw Parquet files: the
reference a full Cascade build is compared with in `bench_transforms.py`.

Adapted only where DuckDB or multi-patient data needs it: `date` is epoch milliseconds
(`epoch_ms`), the rolling average and the daily grouping are per patient.
"""

from __future__ import annotations

SEED_MODELS: tuple[tuple[str, str], ...] = (
    (
        "bronze.stg_glucose_entries",
        """
        with source as (select * from raw.glucose_entries),
        cleaned as (
            select patient_id, sgv as glucose_value, epoch_ms(cast("date" as bigint)) as reading_timestamp,
                   direction, device
            from source
            where sgv is not null
        )
        select * from cleaned
        """,
    ),
    (
        "silver.fct_glucose_readings",
        """
        with staged as (select * from bronze.stg_glucose_entries),
        enriched as (
            select *,
                case when glucose_value < 70 then 'Low' when glucose_value > 180 then 'High' else 'Normal' end
                    as glucose_category,
                avg(glucose_value) over (partition by patient_id order by reading_timestamp
                                         rows between 2 preceding and current row) as rolling_avg_3,
                cast(reading_timestamp as date) as reading_date,
                hour(reading_timestamp) as reading_hour
            from staged
        )
        select * from enriched
        """,
    ),
    (
        "marts.mrt_glucose_overview",
        """
        with daily_stats as (
            select patient_id, reading_date, count(*) as reading_count, avg(glucose_value) as avg_glucose,
                   min(glucose_value) as min_glucose, max(glucose_value) as max_glucose,
                   sum(case when glucose_category = 'Low' then 1 else 0 end) * 100.0 / count(*) as pct_low,
                   sum(case when glucose_category = 'Normal' then 1 else 0 end) * 100.0 / count(*) as pct_in_range,
                   sum(case when glucose_category = 'High' then 1 else 0 end) * 100.0 / count(*) as pct_high
            from silver.fct_glucose_readings
            group by patient_id, reading_date
        )
        select * from daily_stats order by reading_date desc
        """,
    ),
)
