{#- Glucose metric definitions in SQL: each formula is written once here and used by every model.
    They mirror workbench/metrics.py (the reference implementation, cross-checked in tests):
    International Consensus on Time in Range (Battelino 2019) and iglu's definitions. -#}

{#- A consensus range limit in mg/dL: very_low 54, low 70, high 180, very_high 250, tight_high 140.
    The numbers are defined once, in workbench/metrics.py; the runner hands them to dbt as the var
    `glucose_limits` (workbench.transform.runner.dbt_vars). -#}
{% macro glucose_limit(name) -%}
    {{ var('glucose_limits')[name] }}
{%- endmacro %}

{#- Share of readings (percent) for which `condition` holds. -#}
{% macro pct_readings(condition) -%}
    100e0 * sum(case when {{ condition }} then 1 else 0 end) / count(*)
{%- endmacro %}

{#- The seed's three categories: Low (<70), Normal (70-180), High (>180). -#}
{% macro glucose_category(g) -%}
    case
        when {{ g }} < {{ glucose_limit('low') }} then 'Low'
        when {{ g }} > {{ glucose_limit('high') }} then 'High'
        else 'Normal'
    end
{%- endmacro %}

{#- The five consensus ranges: very_low <54, low 54-69, in_range 70-180, high 181-250, very_high >250. -#}
{% macro glucose_range(g) -%}
    case
        when {{ g }} < {{ glucose_limit('very_low') }} then 'very_low'
        when {{ g }} < {{ glucose_limit('low') }} then 'low'
        when {{ g }} <= {{ glucose_limit('high') }} then 'in_range'
        when {{ g }} <= {{ glucose_limit('very_high') }} then 'high'
        else 'very_high'
    end
{%- endmacro %}

{#- Kovatchev's symmetrised glucose f = 1.509 * (ln(g)^1.084 - 5.381); risk r = 10 f^2 split into
    low (f < 0) and high (f > 0) parts. LBGI/HBGI are means of these over readings. -#}
{% macro risk_f(g) -%}
    (1.509 * (power(ln(cast({{ g }} as double)), 1.084) - 5.381))
{%- endmacro %}

{% macro risk_low(g) -%}
    case when {{ risk_f(g) }} < 0 then 10 * power({{ risk_f(g) }}, 2) else 0e0 end
{%- endmacro %}

{% macro risk_high(g) -%}
    case when {{ risk_f(g) }} > 0 then 10 * power({{ risk_f(g) }}, 2) else 0e0 end
{%- endmacro %}


{# The reading metrics every per-day and per-week mart carries, in the marts' column order, from the
   Python step's table (`workbench.metrics` defines them). #}
{% macro reading_metric_columns(relation) -%}
    {%- for column in ['mean_glucose', 'sd_glucose', 'cv_glucose', 'gmi', 'ea1c', 'pct_very_low', 'pct_low',
                       'pct_in_range', 'pct_high', 'pct_very_high', 'pct_below_70', 'pct_above_180',
                       'pct_tight_range', 'gri', 'lbgi', 'hbgi', 'j_index'] %}
        {{ relation }}.{{ column }},
    {%- endfor %}
{%- endmacro %}
