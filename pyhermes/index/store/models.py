"""SQLAlchemy tables of the index, built from :mod:`pyhermes.index.store.layout`.

The index is a cache of the run directories; every value here can be rebuilt
from disk. Tables are prefixed ``hermes_``; the stable views for ad-hoc SQL
(``runs``, ``run_args``, ``run_info``, ``run_tags``, ``run_notes``) are listed in
:mod:`pyhermes.index.store.schema` and created by the migrations. These are SQLAlchemy Core tables (no ORM): the
writers (sync) and the migrations use them; reads use the SQL text that
:mod:`pyhermes.index.query.filters` builds from the same layout.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from pyhermes.index.store import layout
from pyhermes.index.store.layout import SUMMARY_COLUMNS

__all__ = [
    "Base",
    "NAMING_CONVENTION",
    "SUMMARY_COLUMNS",
    "run_table",
    "arg_table",
    "info_table",
    "tag_table",
    "note_table",
    "problem_table",
    "folder_table",
    "meta_table",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_TYPES: dict[str, Any] = {
    "int": Integer,
    "bigint": BigInteger,
    "float": Float,
    "bool": Boolean,
    "text": Text,
    "string": lambda: String(255),
    "string64": lambda: String(64),
    "datetime": DateTime,
}


class Base:
    """Holds the :class:`~sqlalchemy.MetaData` of the index (``Base.metadata``)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _column(spec: layout.Column) -> Column[Any]:
    args: list[Any] = [_TYPES[spec.kind]()]
    if spec.references is not None:
        args.append(ForeignKey(spec.references, ondelete="CASCADE"))
    return Column(
        spec.name,
        *args,
        primary_key=spec.primary_key,
        nullable=spec.nullable and not spec.primary_key,
        index=spec.indexed or None,
        unique=spec.unique or None,
        default=spec.default,
    )


def _table(spec: layout.TableSpec) -> Table:
    table = Table(spec.name, Base.metadata, *(_column(column) for column in spec.columns))
    for name, columns in spec.indexes:
        Index(name, *(table.c[column] for column in columns))
    return table


run_table = _table(layout.RUN)
arg_table = _table(layout.ARG)
info_table = _table(layout.INFO)
tag_table = _table(layout.TAG)
note_table = _table(layout.NOTE)
problem_table = _table(layout.PROBLEM)
folder_table = _table(layout.FOLDER)
meta_table = _table(layout.META)
