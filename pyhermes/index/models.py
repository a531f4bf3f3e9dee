"""SQLAlchemy models of the index.

The index is a cache of the run directories; every value here can be rebuilt
from disk. Tables are prefixed ``hermes_``; the stable views for ad-hoc SQL
(``runs``, ``run_args``, ``run_info``) are defined in :mod:`pyhermes.index.schema`
and created by the migrations. Paths are POSIX paths relative to the index root.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Score-summary fields and the ``hermes_run`` column holding each.
SUMMARY_COLUMNS = {
    "count": "score_count",
    "first": "score_first",
    "last": "score_last",
    "min": "score_min",
    "max": "score_max",
    "mean": "score_mean",
    "std": "score_std",
    "argmax": "score_argmax",
    "final_mean": "score_final_mean",
    "best_window_mean": "score_best_window_mean",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Run(Base):
    """One run directory."""

    __tablename__ = "hermes_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    parent: Mapped[str] = mapped_column(Text, index=True)
    identifier: Mapped[str] = mapped_column(String(255), index=True)
    script_name: Mapped[str | None] = mapped_column(String(255))
    experiment_name: Mapped[str | None] = mapped_column(String(255))
    job_idx: Mapped[int | None] = mapped_column(Integer)
    commit_hash: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    end_time: Mapped[datetime | None] = mapped_column(DateTime)
    execution_time: Mapped[float | None] = mapped_column(Float)
    comments: Mapped[str | None] = mapped_column(Text)
    finished: Mapped[bool] = mapped_column(Boolean)

    score_count: Mapped[int | None] = mapped_column(Integer)
    score_first: Mapped[float | None] = mapped_column(Float)
    score_last: Mapped[float | None] = mapped_column(Float)
    score_min: Mapped[float | None] = mapped_column(Float)
    score_max: Mapped[float | None] = mapped_column(Float)
    score_mean: Mapped[float | None] = mapped_column(Float)
    score_std: Mapped[float | None] = mapped_column(Float)
    score_argmax: Mapped[int | None] = mapped_column(Integer)
    score_final_mean: Mapped[float | None] = mapped_column(Float, index=True)
    score_best_window_mean: Mapped[float | None] = mapped_column(Float)

    # What sync compares to detect change: sizes and mtimes (ns) of the files read.
    info_size: Mapped[int | None] = mapped_column(BigInteger)
    info_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    args_size: Mapped[int | None] = mapped_column(BigInteger)
    args_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    scores_size: Mapped[int | None] = mapped_column(BigInteger)
    scores_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    read_at: Mapped[float] = mapped_column(Float)
    settled: Mapped[bool] = mapped_column(Boolean, index=True)
    # What was irregular in the files when the run was last read, one note per
    # line (see pyhermes.rundir.decode_text), NULL when nothing was.
    warnings: Mapped[str | None] = mapped_column(Text)


class RunArg(Base):
    """One line of a run's ``exec_arguments``: raw, and parsed into key and value."""

    __tablename__ = "hermes_arg"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("hermes_run.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    raw: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(Text)
    num: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_hermes_arg_raw_run", "raw", "run_id"),
        Index("ix_hermes_arg_key_num", "key", "num"),
        Index("ix_hermes_arg_key_value", "key", "value"),
    )


class RunInfo(Base):
    """One ``key:value`` of a run's ``hermes.info`` (the last value of a repeated key)."""

    __tablename__ = "hermes_info"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("hermes_run.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_hermes_info_key_value", "key", "value"),)


class Problem(Base):
    """A run directory that could not be read, with the reason."""

    __tablename__ = "hermes_problem"

    path: Mapped[str] = mapped_column(Text, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[float] = mapped_column(Float)


class Folder(Base):
    """A folder whose listing the index knows (for the quick sync's mtime shortcut)."""

    __tablename__ = "hermes_folder"

    path: Mapped[str] = mapped_column(Text, primary_key=True)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    listed_at: Mapped[float] = mapped_column(Float)
    subfolders: Mapped[str] = mapped_column(Text, default="")


class Meta(Base):
    """Facts about the index itself: ``schema_generation``, ``root``."""

    __tablename__ = "hermes_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


run_table = Run.__table__
arg_table = RunArg.__table__
info_table = RunInfo.__table__
problem_table = Problem.__table__
folder_table = Folder.__table__
meta_table = Meta.__table__
