{#- The metrics computed in Python (workbench/metrics.py via workbench.transform.computed) from the
    fact: gold.glucose_metrics_daily|weekly|period, gold.glucose_episodes, gold.glucose_agp, which the
    marts read as source `computed` (each mart refs this model so that it runs first). On duckdb the
    plugin computes them inside this dbt run when it builds this model (config `cascade_computed`);
    on trino the runner computes them between gold and the marts. The table itself is one row. -#}
{{ config(materialized='table', cascade_computed=true) }}
-- depends_on: {{ ref('fct_glucose_readings') }}
select cast(1 as integer) as computed
