"""Values as the front ends show them: text for tables and CSV, JSON data, lists typed by users."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["text_value", "json_value", "split_list", "is_number"]


def text_value(value: Any, *, compact: bool) -> str:
    """Return ``value`` as text: compact for tables (6 significant digits), else in full.

    ``None`` is the empty text, booleans ``true``/``false``, times ISO 8601, lists
    their items joined by spaces, bytes hexadecimal.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if compact else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds") if compact else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return " ".join(text_value(item, compact=compact) for item in value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def json_value(value: Any) -> Any:
    """Return ``value`` as JSON data: times as ISO text, non-finite floats as ``None``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return json_value(float(value))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return json_value(value.tolist())
    return str(value)


def split_list(text: str | None) -> list[str]:
    """Split comma-separated text into its stripped, non-empty parts (``None``: no parts)."""
    if text is None:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def is_number(value: Any) -> bool:
    """True for a number a table aligns right (not a bool)."""
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
