{#- On duckdb, `table` and `incremental` models are Iceberg tables on the selected branch.
    The model's SQL runs in DuckDB (which sees the branch's tables as views) and the result is
    written by workbench.transform.plugin through Lakehouse(ref=branch).write(...):
    - table, or incremental on first run / --full-refresh: overwrite the whole table;
    - incremental: overwrite by filter, replacing exactly the `unique_key` values (days) produced,
      and those a corrected zone re-cuts (macro recut_keys), even when none of their rows is left.
    The plugin then points the model's view at the new snapshot. On trino the built-in
    dbt-trino materializations apply, their delete+insert also deleting the re-cut keys
    (macros/incremental.sql). -#}

{% macro cascade_iceberg_materialization(incremental) %}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set is_update = incremental and existing_relation is not none and not should_full_refresh() -%}
    {%- set unique_key = config.get('unique_key') -%}
    {%- if incremental and unique_key is none -%}
        {{ exceptions.raise_compiler_error("incremental model " ~ this ~ " needs a unique_key (the day column it replaces)") }}
    {%- endif -%}
    {%- set partition_by = config.get('partition_by') or [] -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}

    {%- set write = {
        'sql': sql,
        'schema': this.schema,
        'identifier': this.identifier,
        'mode': 'replace_keys' if is_update else 'replace_table',
        'unique_key': unique_key,
        'recut_keys': recut_keys() if is_update and config.get('recut_ingested_column') else none,
        'partition_by': partition_by,
        'model': model.unique_id,
        'computed': config.get('cascade_computed', false),
        'full_refresh': should_full_refresh(),
        'agp_days': var('agp_days'),
    } -%}
    {% do adapter.store_relation('cascade', target_relation, [], '', 'iceberg', write) %}

    {% call statement('main') -%}
        select 1 as written
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {% do adapter.cache_added(target_relation) if existing_relation is none %}
    {{ return({'relations': [target_relation]}) }}
{% endmacro %}

{% materialization table, adapter='duckdb' %}
    {{ return(cascade_iceberg_materialization(incremental=false)) }}
{% endmaterialization %}

{% materialization incremental, adapter='duckdb' %}
    {{ return(cascade_iceberg_materialization(incremental=true)) }}
{% endmaterialization %}
