"""The query string of a request, read in one place: every view of :mod:`pyhermes.web` parses here.

Functions take the request's arguments (``flask.request.args``, or any mapping
with ``get``, ``getlist`` and ``in``) and return plain values; a malformed value
raises :class:`~pyhermes.errors.QueryError`, which the app answers with a 400.
Nothing here imports Flask, so the rules can be read and tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict
from urllib.parse import urlsplit

from pyhermes import present
from pyhermes.errors import QueryError
from pyhermes.index.query.select import parse_sort_key
from pyhermes.web.state import DEFAULT_PER_PAGE, LOOPBACK, MAX_WRITE_RUNS

__all__ = [
    "Args",
    "RunsView",
    "CurvesOptions",
    "Selection",
    "args_list",
    "int_arg",
    "flag_arg",
    "text_arg",
    "sort_arg",
    "wants_csv",
    "runs_view",
    "compare_view",
    "curves_options",
    "selection",
    "parse_sort_key",
    "sortable",
    "is_api",
    "host_name",
    "is_local_host",
    "TRUE_WORDS",
    "BANDS",
    "origin_of",
    "same_origin",
    "write_body",
    "body_runs",
    "body_tags",
    "body_text",
    "tag_filter",
]

#: The values of a yes/no argument (``all=1``, ``raw=true``) that mean yes; anything else is no.
TRUE_WORDS = ("1", "true", "yes")
#: The bands of ``/api/curves`` and ``/compare`` (``none``: no band).
BANDS = ("std", "ci95", "none")
#: The smoothing window of curves when the URL does not say.
DEFAULT_WINDOW = 100
#: The sort of the runs of a compare view when the URL does not say (oldest first).
COMPARE_SORT = "start_time"


class Args(Protocol):
    """What the parsers read: the arguments of a query string (``werkzeug``'s ``MultiDict``)."""

    def get(self, key: str, default: Any = None) -> Any:
        """Return the first value of ``key``, or ``default``."""

    def getlist(self, key: str) -> list[str]:
        """Return every value of ``key`` (repeated arguments), in order."""

    def __contains__(self, key: object) -> bool:
        """Return whether ``key`` is given at all (even empty)."""


class RunsView(TypedDict):
    """The view state of the Runs page (and of ``/api/runs``): all of it lives in the URL."""

    where: str
    sort: str
    columns: list[str] | None
    page: int
    per_page: int


class CurvesOptions(TypedDict):
    """How curves are drawn: the options of ``/api/curves`` and of the Compare page."""

    group_by: str
    window: int
    band: str | None
    min_runs: int | None
    max_points: int
    raw: bool


@dataclass(frozen=True)
class Selection:
    """The runs of a compare: ``identifiers`` when given (``runs=ID,...``), else the filter ``where``."""

    identifiers: list[str] | None
    where: str | None
    sort: str


# --------------------------------------------------------------------------- one argument


def text_arg(args: Args, name: str, default: str = "") -> str:
    """Return the text of argument ``name`` as given (``default`` when absent)."""
    return str(args.get(name, default))


def args_list(args: Args, name: str, single: str) -> list[str] | None:
    """Return the values given as ``single=a,b`` or as repeated ``name=a&name=b``; ``None`` if neither.

    Repeated values win over the comma-separated form; empty values are dropped.
    """
    repeated = args.getlist(name)
    if repeated:
        return [value for value in repeated if value]
    if single in args:
        return present.split_list(args.get(single))
    return None


def int_arg(args: Args, name: str, default: int, minimum: int = 1) -> int:
    """Return argument ``name`` as a whole number, ``default`` when absent or blank.

    Raises:
        QueryError: the text is no whole number, or the number is below ``minimum``.
    """
    text = str(args.get(name, "")).strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise QueryError(f"{name} must be a whole number, not {text!r}") from None
    if value < minimum:
        raise QueryError(f"{name} must be at least {minimum}, got {value}")
    return value


def flag_arg(args: Args, name: str) -> bool:
    """Return whether argument ``name`` says yes (one of :data:`TRUE_WORDS`); absent is no."""
    return args.get(name, "") in TRUE_WORDS


def sort_arg(args: Args, default: str = "") -> str:
    """Return the sort keys as given (``-final_mean,-lr:desc``), or ``default`` when absent or empty.

    The keys are checked where they are used (by the index), which raises
    :class:`~pyhermes.errors.QueryError` for an unknown one.
    """
    return str(args.get("sort") or default)


def wants_csv(args: Args) -> bool:
    """Return whether the answer is asked as CSV (``format=csv``) rather than JSON (the default).

    Raises:
        QueryError: ``format`` is neither ``json`` nor ``csv``.
    """
    fmt = args.get("format", "json")
    if fmt not in ("json", "csv"):
        raise QueryError(f"format must be json or csv, not {fmt!r}")
    return fmt == "csv"


def sortable(name: str) -> bool:
    """Return whether the runs table can be sorted by column ``name``.

    Run fields, score summaries and option keys (``-lr``) can; ``args``, ``info.KEY``
    and positional keys cannot.
    """
    from pyhermes.index.query.filters import RUN_FIELDS
    from pyhermes.index.store.layout import SUMMARY_COLUMNS

    return name in SUMMARY_COLUMNS or name in RUN_FIELDS or (
        name.startswith("-") and len(name.split()) == 1
    )


# --------------------------------------------------------------------------- view states


def runs_view(args: Args) -> RunsView:
    """Return the view state of the Runs page: filter, sort, columns, page and page size.

    A page below 1 is 1 (see :func:`page_arg`).

    Raises:
        QueryError: ``page`` is no whole number, or ``per_page`` no whole number of at least 1.
    """
    return {
        "where": text_arg(args, "where"),
        "sort": text_arg(args, "sort"),
        "columns": args_list(args, "column", "columns"),
        "page": page_arg(args),
        "per_page": int_arg(args, "per_page", DEFAULT_PER_PAGE),
    }


def page_arg(args: Args) -> int:
    """Return the ``page`` argument, 1 when absent or below 1 (one past the end is clamped
    to the last page where the count is known, see :func:`pyhermes.present.runs_page`).

    Raises:
        QueryError: the text is no whole number.
    """
    text = str(args.get("page", "")).strip()
    if not text:
        return 1
    try:
        return max(1, int(text))
    except ValueError:
        raise QueryError(f"page must be a whole number, not {text[:40]!r}") from None


def compare_view(args: Args) -> RunsView:
    """Return the view state of the table of the Compare page: its filter, sort and columns, one page.

    The page holds as many runs as a page can (:data:`pyhermes.present.MAX_PER_PAGE`).
    """
    return {
        "where": text_arg(args, "where"),
        "sort": text_arg(args, "sort"),
        "columns": args_list(args, "column", "columns"),
        "page": 1,
        "per_page": present.MAX_PER_PAGE,
    }


def curves_options(args: Args) -> CurvesOptions:
    """Return how to draw curves: grouping, window, band, minimum runs per group, points, raw scores.

    ``max_points`` is capped at :data:`pyhermes.present.MAX_POINTS`; ``band=none`` gives ``None``.
    ``group_by`` is keys (``-lr,--doubledqn``), ``*`` (one group of every run) or empty
    (one line per run); the Compare page fills it in when the URL has none.

    Raises:
        QueryError: a band other than :data:`BANDS`, or a window, ``min_runs`` or
            ``max_points`` that is no whole number in range.
    """
    band = text_arg(args, "band", "std")
    if band not in BANDS:
        raise QueryError(f"band must be std, ci95 or none, not {band!r}")
    return {
        "group_by": text_arg(args, "group_by"),
        "window": int_arg(args, "window", DEFAULT_WINDOW),
        "band": None if band == "none" else band,
        "min_runs": int_arg(args, "min_runs", 0, minimum=0) or None,
        "max_points": min(int_arg(args, "max_points", present.MAX_POINTS), present.MAX_POINTS),
        "raw": flag_arg(args, "raw"),
    }


def selection(args: Args) -> Selection:
    """Return the runs a compare reads: ``runs=ID,...`` (or repeated ``run=``), else ``where``.

    An empty filter is ``None`` (every run); the sort defaults to :data:`COMPARE_SORT`.
    """
    identifiers = args_list(args, "run", "runs")
    return Selection(
        identifiers=identifiers or None,
        where=None if identifiers else (args.get("where") or None),
        sort=sort_arg(args, COMPARE_SORT),
    )


# --------------------------------------------------------------------------- the request itself


def is_api(path: str) -> bool:
    """Return whether the request path is one of the JSON API (errors are then answered in JSON)."""
    return path.startswith("/api/")


def host_name(host: str) -> str:
    """Return the name in a ``Host`` header: ``[::1]:8765`` -> ``::1``, ``localhost:8765`` -> ``localhost``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if ":" in host else host


def is_local_host(host: str) -> bool:
    """Return whether a ``Host`` header names this machine by a loopback name or address."""
    return host_name(host) in LOOPBACK


def origin_of(url: str) -> str:
    """Return the origin (``scheme://host[:port]``, lower case) of an absolute URL, ``""`` if it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(origin: str | None, referer: str | None, own_url: str) -> bool:
    """Return whether a request comes from a page of this server.

    ``origin`` (the ``Origin`` header) decides when given: it must be the origin of
    ``own_url`` (the server as the request names it, e.g. ``http://127.0.0.1:8765/``);
    ``"null"`` (a sandboxed or file page) never is. Without it the ``Referer`` header
    must be a URL of that origin. Without either the answer is no.
    """
    own = origin_of(own_url)
    if not own:
        return False
    if origin is not None:
        return origin.strip().lower() == own
    if referer:
        return origin_of(referer) == own
    return False


# --------------------------------------------------------------------------- write bodies


def write_body(body: Any) -> Mapping[str, Any]:
    """Return the JSON body of a write request, checked to be a JSON object.

    Raises:
        QueryError: the body is missing, not JSON, or not an object.
    """
    if not isinstance(body, Mapping):
        raise QueryError(
            "the body must be a JSON object (Content-Type: application/json), "
            'e.g. {"runs": ["<identifier>", ...], ...}'
        )
    return body


def _texts(body: Mapping[str, Any], key: str) -> list[str]:
    """The value of ``key``: a list of strings (one string stands for a list of one); ``[]`` if absent."""
    value = body.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise QueryError(f"{key!r} must be a list of strings")
    return list(value)


def body_runs(body: Mapping[str, Any]) -> list[str]:
    """Return the identifiers of the runs a write names (``"runs"``), in order, without repeats.

    Raises:
        QueryError: no run named, a name that is not a non-empty string, or more than
            :data:`~pyhermes.web.state.MAX_WRITE_RUNS` runs.
    """
    names = [name.strip() for name in _texts(body, "runs")]
    if not names or not all(names):
        raise QueryError('name the runs by identifier: {"runs": ["<identifier>", ...]} (none empty)')
    unique = list(dict.fromkeys(names))
    if len(unique) > MAX_WRITE_RUNS:
        raise QueryError(f"at most {MAX_WRITE_RUNS:,} runs per request, not {len(unique):,}")
    return unique


def body_tags(body: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Return (tags to add, tags to remove) of a tag request (``"add"`` and ``"remove"``).

    Each tag is checked by :func:`pyhermes.rundir.check_tag` (stripped), so that a bad
    tag is refused before anything is written.

    Raises:
        InvalidTagError: a tag breaks the rule of tags (the library's message).
        QueryError: no tag given, or a tag both added and removed.
    """
    from pyhermes import rundir

    add = [rundir.check_tag(tag) for tag in _texts(body, "add")]
    remove = [rundir.check_tag(tag) for tag in _texts(body, "remove")]
    if not add and not remove:
        raise QueryError('give tags to add or remove: {"add": ["<tag>"], "remove": ["<tag>"]}')
    both = sorted(set(add) & set(remove))
    if both:
        raise QueryError(f"tags both added and removed: {', '.join(both)}")
    return list(dict.fromkeys(add)), list(dict.fromkeys(remove))


def body_text(body: Mapping[str, Any]) -> str:
    """Return the text of a note request (``"text"``).

    Raises:
        QueryError: no text, or a blank one.
    """
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise QueryError('give the note: {"text": "..."} (not blank)')
    return text


def tag_filter(tag: str) -> str:
    """Return the filter expression of the runs having ``tag``: ``tag = "<tag>"`` (quoted, escaped)."""
    quoted = tag.replace("\\", "\\\\").replace('"', '\\"')
    return f'tag = "{quoted}"'
