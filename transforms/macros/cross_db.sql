{#- Cross-database helpers, dispatched per engine (duckdb embedded, trino in the stack). -#}

{#- Epoch milliseconds -> timestamp of the UTC instant (no zone attached). -#}
{% macro epoch_ms_to_utc(epoch_ms) -%}
    {{ return(adapter.dispatch('epoch_ms_to_utc', 'cascade')(epoch_ms)) }}
{%- endmacro %}

{% macro default__epoch_ms_to_utc(epoch_ms) -%}
    epoch_ms(cast({{ epoch_ms }} as bigint))
{%- endmacro %}

{% macro trino__epoch_ms_to_utc(epoch_ms) -%}
    cast(at_timezone(from_unixtime_nanos(cast({{ epoch_ms }} as bigint) * 1000000), 'UTC') as timestamp(6))
{%- endmacro %}

{#- Epoch milliseconds -> wall-clock timestamp in the IANA time zone held by `tz` (a column). -#}
{% macro epoch_ms_to_local(epoch_ms, tz) -%}
    {{ return(adapter.dispatch('epoch_ms_to_local', 'cascade')(epoch_ms, tz)) }}
{%- endmacro %}

{% macro default__epoch_ms_to_local(epoch_ms, tz) -%}
    timezone({{ tz }}, timezone('UTC', epoch_ms(cast({{ epoch_ms }} as bigint))))
{%- endmacro %}

{% macro trino__epoch_ms_to_local(epoch_ms, tz) -%}
    cast(at_timezone(from_unixtime_nanos(cast({{ epoch_ms }} as bigint) * 1000000), {{ tz }}) as timestamp(6))
{%- endmacro %}

{#- ISO-8601 string (Nightscout created_at) -> timestamp of the UTC instant. -#}
{% macro iso_to_utc(text) -%}
    {{ return(adapter.dispatch('iso_to_utc', 'cascade')(text)) }}
{%- endmacro %}

{% macro default__iso_to_utc(text) -%}
    timezone('UTC', try_cast({{ text }} as timestamptz))
{%- endmacro %}

{% macro trino__iso_to_utc(text) -%}
    cast(at_timezone(try(from_iso8601_timestamp({{ text }})), 'UTC') as timestamp(6))
{%- endmacro %}

{#- Seconds since the epoch of a timestamp that holds a UTC instant. -#}
{% macro epoch_seconds(ts) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'cascade')(ts)) }}
{%- endmacro %}

{% macro default__epoch_seconds(ts) -%}
    epoch({{ ts }})
{%- endmacro %}

{% macro trino__epoch_seconds(ts) -%}
    to_unixtime(with_timezone({{ ts }}, 'UTC'))
{%- endmacro %}

{#- Date parts (both engines speak `extract`; kept as macros so models read the same everywhere). -#}
{% macro hour_of(ts) -%}
    cast(extract(hour from {{ ts }}) as integer)
{%- endmacro %}

{% macro minute_of_day(ts) -%}
    cast(extract(hour from {{ ts }}) * 60 + extract(minute from {{ ts }}) as integer)
{%- endmacro %}

{% macro iso_day_of_week(d) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'cascade')(d)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(d) -%}
    cast(isodow({{ d }}) as integer)
{%- endmacro %}

{% macro trino__iso_day_of_week(d) -%}
    cast(day_of_week({{ d }}) as integer)
{%- endmacro %}

{% macro iso_week_start(d) -%}
    cast(date_trunc('week', {{ d }}) as date)
{%- endmacro %}

{% macro add_days(d, n) -%}
    {{ return(adapter.dispatch('add_days', 'cascade')(d, n)) }}
{%- endmacro %}

{% macro default__add_days(d, n) -%}
    cast({{ d }} + cast({{ n }} as integer) as date)
{%- endmacro %}

{% macro trino__add_days(d, n) -%}
    date_add('day', {{ n }}, {{ d }})
{%- endmacro %}

{% macro days_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('days_between', 'cascade')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__days_between(start_date, end_date) -%}
    ({{ end_date }} - {{ start_date }})
{%- endmacro %}

{% macro trino__days_between(start_date, end_date) -%}
    date_diff('day', {{ start_date }}, {{ end_date }})
{%- endmacro %}

{#- Percentile `p` (0..1) of a numeric column: exact, with linear interpolation, on both engines. -#}
{% macro percentile(expr, p) -%}
    {{ return(adapter.dispatch('percentile', 'cascade')(expr, p)) }}
{%- endmacro %}

{% macro default__percentile(expr, p) -%}
    quantile_cont({{ expr }}, {{ p }})
{%- endmacro %}

{% macro trino__percentile(expr, p) -%}
    {#- exact, with DuckDB's interpolation (so marts agree across profiles): sort the group's values,
        h = p·(n−1), value = a[⌊h⌋] + (h − ⌊h⌋)·(a[⌊h⌋+1] − a[⌊h⌋]) -#}
    transform(
        array[array_sort(array_agg(cast({{ expr }} as double)) filter (where {{ expr }} is not null))],
        a -> if(cardinality(a) = 0, null,
            a[cast(floor({{ p }} * (cardinality(a) - 1)) as integer) + 1]
            + ({{ p }} * (cardinality(a) - 1) - floor({{ p }} * (cardinality(a) - 1)))
            * (a[least(cast(floor({{ p }} * (cardinality(a) - 1)) as integer) + 2, cardinality(a))]
               - a[cast(floor({{ p }} * (cardinality(a) - 1)) as integer) + 1]))
    )[1]
{%- endmacro %}

{#- A date series: one row per day, column `date_day`, inclusive bounds (dates or expressions). -#}
{% macro date_spine(start_date, end_date) -%}
    {{ return(adapter.dispatch('date_spine', 'cascade')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_spine(start_date, end_date) -%}
    select cast(generate_series as date) as date_day
    from generate_series(cast({{ start_date }} as date), cast({{ end_date }} as date), interval 1 day)
{%- endmacro %}

{% macro trino__date_spine(start_date, end_date) -%}
    select date_day
    from unnest(sequence(cast({{ start_date }} as date), cast({{ end_date }} as date), interval '1' day)) as t (date_day)
{%- endmacro %}
