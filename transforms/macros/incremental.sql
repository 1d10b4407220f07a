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
