"""The one exception hierarchy of pyhermes.

Every error pyhermes raises on purpose derives from :class:`HermesError`, and
also from the built-in exception a caller would naturally catch, so existing
``except ValueError`` code keeps working::

    HermesError
    ├── MissingDependencyError (ImportError)   an optional extra is not installed
    ├── RunFormatError (ValueError)            a run's file cannot be read as the legacy format
    ├── UntrustedFileError (ValueError)        a torch file needs unpickling; opt in with trusted=True
    ├── CatalogError (RuntimeError)            base of the errors about the SQL index
    │   ├── IndexVersionError                  the index was written by a newer pyhermes
    │   ├── IndexBusyError                     the index stayed locked past the busy limit
    │   ├── IndexDamagedError                  the SQLite index file is damaged (it is rebuilt)
    │   └── ReadOnlyQueryError (ValueError)    a statement given to ``sql()`` would write
    └── QueryError (ValueError)                a filter expression or column name is wrong

Messages name the misuse and, where there is one, the fix.
"""

from __future__ import annotations

__all__ = [
    "HermesError",
    "MissingDependencyError",
    "RunFormatError",
    "UntrustedFileError",
    "CatalogError",
    "IndexVersionError",
    "IndexBusyError",
    "IndexDamagedError",
    "ReadOnlyQueryError",
    "QueryError",
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
