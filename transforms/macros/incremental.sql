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

{#- One value (the first column of `query`'s one row), read when the model runs and inlined as a
    literal of the column's own type. Engines push a literal comparison into the scan, where file and
    row-group statistics skip what it excludes; a scalar subquery they evaluate against every row.
    NULL (e.g. the max of an empty table) stays NULL, so comparisons with it match nothing, as the
    subquery's did. -#}
{% macro query_literal(query) %}
    {%- if not execute -%}
        {{ return('null') }}
    {%- endif -%}
    {%- set result = run_query('select cast(v as varchar) as v, typeof(v) as t from (' ~ query ~ ') as q(v)') -%}
    {%- set value, type = result.rows[0][0], result.rows[0][1] -%}
    {%- if value is none -%}
        {{ return('cast(null as ' ~ type ~ ')') }}
    {%- endif -%}
    {{ return("cast('" ~ (value | replace("'", "''")) ~ "' as " ~ type ~ ")") }}
{% endmacro %}

{#- The keys (days, or weeks) of this incremental model that a corrected zone re-cuts: every key the
    model stores for a patient whose zone was corrected after the model last ran (the zone landed
    later than the model's newest row; config `recut_ingested_column` names the model's column of
    when its rows landed). One definition, used twice: the model recomputes these keys (they are part
    of its changed days), and the write deletes them even when the new cut leaves one with no rows
    for any patient; dbt's delete+insert alone deletes only the keys of the new rows. The model names
    `ref('stg_patients')` in a depends_on comment (dbt sees no ref inside is_incremental). -#}
{% macro recut_keys() %}
    select distinct {{ config.get('unique_key') }}
    from {{ this }}
    where patient_id in (
        select patient_id
        from {{ ref('stg_patients') }}
        where time_zone_since > (select max({{ config.get('recut_ingested_column') }}) from {{ this }})
    )
{% endmacro %}

{#- delete+insert on trino: first delete the keys a corrected zone re-cuts (above), then dbt-trino's own
    delete of the new rows' keys and insert. (On duckdb the plugin's overwrite by filter adds them to
    the keys it replaces, see macros/materializations/iceberg.sql.) -#}
{% macro trino__get_incremental_delete_insert_sql(arg_dict) %}
    {%- if config.get('recut_ingested_column') %}
        delete from {{ arg_dict['target_relation'] }}
        where {{ arg_dict['unique_key'] }} in ({{ recut_keys() }});
    {% endif -%}
    {{ default__get_incremental_delete_insert_sql(arg_dict) }}
{% endmacro %}
