"""Installed in child processes of the tests (``PYTHONPATH``): the index-file audit hook.

At exit, a process that opened an index file outside SQLite prints each
violation as a line starting ``IndexFileOpened:`` on stderr; the tests read it.
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import index_files  # noqa: E402

index_files.install()


@atexit.register
def _report() -> None:
    for violation in index_files.take_violations():
        print(f"IndexFileOpened: {violation}", file=sys.stderr)
