"""The one declarative base of the validator's database, shared by every model module.

The models live with their owners: :mod:`gaia.database.validator_schema` (the weather
validator's tables) and :mod:`gaia.jobs.schema` (the job queue). Code that needs the whole
schema on ``Base.metadata`` (Alembic, the migration tests) imports both.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import DateTime, Enum, MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TIMESTAMP = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def sql_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    """A PostgreSQL enum type ``name`` holding the members' values."""
    return Enum(enum_cls, name=name, values_callable=lambda e: [m.value for m in e])
