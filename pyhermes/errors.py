"""The one exception hierarchy of pyhermes.

Every error pyhermes raises on purpose derives from :class:`HermesError`, and
also from the built-in exception a caller would naturally catch, so existing
``except ValueError`` code keeps working::

    HermesError
    ├── MissingDependencyError (ImportError)   an optional extra is not installed
    ├── RunFormatError (ValueError)            a run's file cannot be read as the legacy format
    ├── InvalidTagError (ValueError)           a tag is empty, too long, or holds a control character, / or \\
    ├── UntrustedFileError (ValueError)        a torch file needs unpickling; opt in with trusted=True
    ├── CatalogError (RuntimeError)            base of the errors about the SQL index
    │   ├── IndexVersionError                  the index was written by a newer pyhermes
    │   ├── IndexBusyError                     the index stayed locked past the busy limit
    │   ├── IndexDamagedError                  the SQLite index file is damaged (it is rebuilt)
    │   ├── SchemaUnknownError                 the index holds a schema pyhermes does not know
    │   └── ReadOnlyQueryError (ValueError)    a statement given to ``sql()`` would write
    └── QueryError (ValueError)                a filter expression or column name is wrong
        └── UnknownKeyError                    a filter names an exec-arg key no run has

Warnings (``UserWarning``) say what pyhermes did about a fault that did not stop it::

    RunFormatWarning            a run's file is irregular but was read
    RunFormatProblemsWarning    some runs could not be read during a sync (and were skipped)
    BrokenIndexWarning          a damaged SQLite index was set aside and starts afresh
    NetworkFilesystemWarning    a SQLite index on a network filesystem (no WAL there)

Messages name the misuse and, where there is one, the fix.
"""

from __future__ import annotations

__all__ = [
    "HermesError",
    "MissingDependencyError",
    "RunFormatError",
    "InvalidTagError",
    "UntrustedFileError",
    "CatalogError",
    "IndexVersionError",
    "IndexBusyError",
    "IndexDamagedError",
    "ReadOnlyQueryError",
    "QueryError",
    "UnknownKeyError",
    "SchemaUnknownError",
    "RunFormatWarning",
    "RunFormatProblemsWarning",
    "BrokenIndexWarning",
    "NetworkFilesystemWarning",
]


class HermesError(Exception):
    """Base class of every error raised on purpose by pyhermes."""


class MissingDependencyError(HermesError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class RunFormatError(HermesError, ValueError):
    """A file of a run directory does not follow the legacy hermes format.

    ``path`` is the offending file; the message says what is wrong and where.
    """

    def __init__(self, message: str, path: object = None) -> None:
        super().__init__(message)
        self.path = path


class InvalidTagError(HermesError, ValueError):
    """A tag breaks the rule of ``hermes.tags`` (see :func:`pyhermes.rundir.check_tag`).

    ``tag`` is the tag as given; the message names it and the rule it breaks.
    """

    def __init__(self, message: str, tag: object = None) -> None:
        super().__init__(message)
        self.tag = tag


class UntrustedFileError(HermesError, ValueError):
    """A torch file cannot be loaded with ``weights_only=True``.

    Loading it would need arbitrary unpickling, which can run code. Pass
    ``trusted=True`` only for files you wrote yourself.
    """


class CatalogError(HermesError, RuntimeError):
    """Base class of the errors about the SQL index itself."""


class IndexVersionError(CatalogError):
    """The index was written by a newer pyhermes than this one."""


class IndexBusyError(CatalogError):
    """The index stayed locked or in conflict past the busy limit (``HERMES_BUSY_LIMIT``).

    The message says what holds the database (processes or sessions), when that can be found.
    """


class IndexDamagedError(CatalogError):
    """A read found the SQLite index file damaged twice in a row.

    The index is a cache: the next ``load_all`` or ``hermes-reindex`` sets a copy
    of the damaged file aside and rebuilds it from the run directories.
    """


class ReadOnlyQueryError(CatalogError, ValueError):
    """A statement given to ``sql()`` would modify the index; only reads are allowed."""


class QueryError(HermesError, ValueError):
    """A filter expression, column or sort key is wrong.

    ``position`` is the 0-based offset in the expression text, when known.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class UnknownKeyError(QueryError):
    """A filter text names an exec-arg key that no run has (most likely a typo).

    ``key`` is the key as written, ``suggestions`` the closest known keys (may be
    empty), ``position`` its offset in the filter text; the message names them.
    """

    def __init__(
        self, message: str, key: str = "", suggestions: tuple[str, ...] = (), position: int | None = None
    ) -> None:
        super().__init__(message, position)
        self.key = key
        self.suggestions = suggestions


class SchemaUnknownError(CatalogError):
    """The index has a schema this pyhermes does not know, and not a newer one.

    Raised for a revision that is not one of the known revisions while the
    stored generation is missing or not above this pyhermes' generation, and for
    a database holding hermes tables without any revision. ``revision`` is the
    revision found (``None`` when there is none).
    """

    def __init__(self, message: str, revision: str | None = None) -> None:
        super().__init__(message)
        self.revision = revision


class RunFormatWarning(UserWarning):
    """A run's file is irregular but was read: a line decoded by the fallback or skipped, NULs dropped."""


class RunFormatProblemsWarning(UserWarning):
    """Some runs could not be read during a sync; ``hermes-reindex --check`` lists them."""


class BrokenIndexWarning(UserWarning):
    """A SQLite index was found damaged; a copy was set aside and the index is rebuilt from disk."""


class NetworkFilesystemWarning(UserWarning):
    """A SQLite index is on a network filesystem: no WAL there; PostgreSQL is the better index."""
