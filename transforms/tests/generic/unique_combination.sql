{#- The combination of `columns` is unique (dbt_utils.unique_combination_of_columns, written here
    because the project installs no packages). -#}
{% test unique_combination(model, columns) %}

with

grouped as (

    select
        {{ columns | join(', ') }},
        count(*) as row_count

    from {{ model }}
    group by {{ columns | join(', ') }}

)

select * from grouped
where row_count > 1

{% endtest %}
