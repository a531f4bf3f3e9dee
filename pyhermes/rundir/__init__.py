"""Reading and writing the files of a legacy hermes run directory.

This is the only package that knows the file names and formats of a run
(see the README's "On-disk format" section). It parses bytes into plain Python
values and writes files so that each is complete or absent; it knows nothing
about the index.

Layout: ``<root>/experiments/<script_name>/<experiment_name>/<identifier>/`` where
``identifier`` is ``<start %Y_%m_%d_%H%M%S%f>_<job index>_<last 5 of commit>``.

This module is the one public surface; the private submodules own: ``_names``
(file names, keys, times, identifiers), ``_text`` (opening, reading and decoding
bytes with limits), ``_parse`` (``hermes.info`` and ``exec_arguments``),
``_scores`` (``.scores`` files), ``_listing`` (finding runs, safe paths),
``_write`` (atomic writes, creating runs), ``_files`` (files as downloads, windows
of log lines), ``_torch`` (safe torch loads) and
``_curation`` (a run's tags, ``hermes.tags``, and notes, ``hermes.notes``).
Callers use ``rundir.<name>`` or ``from pyhermes.rundir import <name>``.
"""

from __future__ import annotations

from pyhermes.errors import InvalidTagError, RunFormatError, RunFormatWarning
from pyhermes.rundir._curation import (
    MAX_NOTE_BYTES,
    MAX_TAG_LENGTH,
    NOTES_FILE,
    TAGS_FILE,
    Note,
    TagRewrite,
    append_note,
    change_tags,
    check_tag,
    read_notes,
    read_tags,
    rewrite_tags,
)
from pyhermes.rundir._files import (
    LOG_SUFFIX,
    MAX_LOG_LINE_BYTES,
    LogWindow,
    RunFile,
    content_type,
    ends_in_traceback,
    log_names,
    open_run_file,
    read_log_window,
    run_files,
)
from pyhermes.rundir._listing import (
    SKIPPED_FOLDERS,
    has_info_file,
    is_run_dir,
    iter_run_dirs,
    layout_names,
    list_files,
    list_folder,
    list_subfolders,
    safe_child,
)
from pyhermes.rundir._names import (
    COMMENTS_KEY,
    COMMIT_HASH_KEY,
    DEFAULT_COMMIT,
    END_TIME_KEY,
    EXEC_ARGS_FILE,
    EXECUTION_TIME_KEY,
    INFO_FILE,
    PTH_SUFFIX,
    RE_EXECUTION_FILE,
    RESULT_SUFFIX,
    SCORES_SUFFIX,
    START_TIME_KEY,
    STDERR_FILE,
    STDOUT_FILE,
    TIME_FORMAT,
    TRACKED_FILES,
    PathLike,
    format_time,
    make_identifier,
    parse_identifier,
    parse_time,
    scores_path,
)
from pyhermes.rundir._parse import (
    convert_value,
    exec_args_dict,
    numeric_value,
    parse_exec_args,
    parse_info,
    read_exec_args,
    read_info,
    split_arg,
)
from pyhermes.rundir._scores import (
    MAX_SCORE_LINE_BYTES,
    SCORE_CHUNK_BYTES,
    iter_scores,
    parse_scores,
    read_scores,
)
from pyhermes.rundir._text import (
    FALLBACK_ENCODING,
    MAX_TEXT_BYTES,
    TEXT_ERRORS,
    decode_text,
    open_log,
    open_regular,
    read_bytes,
    read_text,
)
from pyhermes.rundir._torch import load_torch, numpy_safe_globals
from pyhermes.rundir._write import (
    append_info,
    append_line,
    atomic_write,
    create_run_dir,
    current_commit_hash,
    flush_to_disk,
    format_exec_args,
    rename_no_replace,
    write_finish,
)

__all__ = [
    "COMMENTS_KEY",
    "COMMIT_HASH_KEY",
    "DEFAULT_COMMIT",
    "END_TIME_KEY",
    "EXECUTION_TIME_KEY",
    "EXEC_ARGS_FILE",
    "FALLBACK_ENCODING",
    "INFO_FILE",
    "MAX_NOTE_BYTES",
    "MAX_SCORE_LINE_BYTES",
    "MAX_TAG_LENGTH",
    "MAX_TEXT_BYTES",
    "NOTES_FILE",
    "PTH_SUFFIX",
    "RESULT_SUFFIX",
    "RE_EXECUTION_FILE",
    "SCORES_SUFFIX",
    "SCORE_CHUNK_BYTES",
    "SKIPPED_FOLDERS",
    "START_TIME_KEY",
    "STDERR_FILE",
    "STDOUT_FILE",
    "TAGS_FILE",
    "TEXT_ERRORS",
    "TIME_FORMAT",
    "TRACKED_FILES",
    "InvalidTagError",
    "Note",
    "TagRewrite",
    "PathLike",
    "RunFormatError",
    "RunFormatWarning",
    "append_info",
    "append_line",
    "append_note",
    "atomic_write",
    "flush_to_disk",
    "change_tags",
    "check_tag",
    "convert_value",
    "create_run_dir",
    "current_commit_hash",
    "decode_text",
    "exec_args_dict",
    "format_exec_args",
    "format_time",
    "has_info_file",
    "is_run_dir",
    "iter_run_dirs",
    "iter_scores",
    "layout_names",
    "list_files",
    "list_folder",
    "list_subfolders",
    "load_torch",
    "make_identifier",
    "numeric_value",
    "numpy_safe_globals",
    "open_log",
    "open_regular",
    "parse_exec_args",
    "parse_identifier",
    "parse_info",
    "parse_scores",
    "parse_time",
    "read_bytes",
    "read_exec_args",
    "read_info",
    "read_notes",
    "read_scores",
    "read_tags",
    "rewrite_tags",
    "read_text",
    "safe_child",
    "scores_path",
    "split_arg",
    "rename_no_replace", "write_finish",
    "LOG_SUFFIX", "MAX_LOG_LINE_BYTES", "LogWindow", "RunFile", "content_type", "ends_in_traceback", "log_names",
    "open_run_file", "read_log_window", "run_files",
]
