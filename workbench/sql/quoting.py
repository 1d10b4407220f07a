"""SQL quoting: the one place a table or column name, or a literal value, becomes SQL text."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """One identifier, double-quoted (embedded quotes doubled): `my col` -> `"my col"`."""
    return '"' + name.replace('"', '""') + '"'


def quote_table(name: str) -> str:
    """A `namespace.table` name with each part quoted: `raw.my table` -> `"raw"."my table"`."""
    namespace, dot, table = name.partition(".")
    return f"{quote_ident(namespace)}.{quote_ident(table)}" if dot else quote_ident(name)


def quote_literal(value: object) -> str:
    """A value as an SQL string literal (embedded quotes doubled): `O'Hara` -> `'O''Hara'`."""
    return "'" + str(value).replace("'", "''") + "'"
