{#- is_incremental() for both engines. On duckdb the project's own materializations write Iceberg
    and the relation of an existing model is a view over its Iceberg table (attached by the plugin),
    so the built-in check for type == 'table' does not apply. -#}
{% macro is_incremental() %}
    {% if not execute %}
        {{ return(false) }}
    {% endif %}
    {% set relation = adapter.get_relation(this.database, this.schema, this.table) %}
    {{ return(relation is not none
              and model.config.materialized == 'incremental'
              and not should_full_refresh()) }}
{% endmacro %}

{#- The patients whose zone was corrected after this incremental model last ran (their zone landed
    later than the model's newest source row): their days in the model are days of the old cut and
    are recomputed too, so that a day the new cut leaves empty for them is replaced as well. The
    model names `ref('stg_patients')` in a depends_on comment (dbt sees no ref inside is_incremental). -#}
{% macro recut_patients(ingested_column='source_ingested_at') %}
    select patient_id
    from {{ ref('stg_patients') }}
    where time_zone_since > (select max({{ ingested_column }}) from {{ this }})
{% endmacro %}
