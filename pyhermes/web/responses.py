"""The HTTP answers of ``hermes serve`` other than pages: JSON, streamed CSV and JSON downloads.

Imported once Flask is known to be installed (by the views). Every JSON body is strict JSON (no ``NaN``: non-finite floats are ``null``), times
are ISO text; CSV cells are :func:`pyhermes.present.text_value` in full.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from flask import Response, stream_with_context

from pyhermes import present

__all__ = ["json_response", "csv_response", "json_download", "CHUNK"]

#: Bytes of CSV text gathered before a chunk of a streamed download is sent.
CHUNK = 64 * 1024


def json_response(data: Any, status: int = 200) -> Response:
    """Return ``data`` as an ``application/json`` response with ``status``."""
    try:  # fast path: only times, numpy values and the like need converting
        body = json.dumps(data, ensure_ascii=False, allow_nan=False, default=present.json_value)
    except ValueError:  # a NaN or infinity somewhere: convert everything
        body = json.dumps(present.json_value(data), ensure_ascii=False, allow_nan=False)
    return Response(body, status=status, mimetype="application/json")


def csv_response(columns: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    """Return ``rows`` under ``columns`` as a streamed ``text/csv`` attachment named ``filename``.

    The rows are consumed while the answer is sent, in chunks of about :data:`CHUNK` bytes.
    """

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([present.text_value(value, compact=False) for value in row])
            if buffer.tell() > CHUNK:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def json_download(records: Iterable[dict[str, Any]], filename: str) -> Response:
    """Return ``records`` as a streamed JSON array (one record a line), an attachment named ``filename``.

    The records are consumed while the answer is sent.
    """

    def generate() -> Iterator[str]:
        yield "["
        for number, record in enumerate(records):
            text = json.dumps(present.json_value(record), ensure_ascii=False, allow_nan=False)
            yield ("," if number else "") + "\n" + text
        yield "\n]\n"

    return Response(
        stream_with_context(generate()),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
