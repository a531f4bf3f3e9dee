"""Values as the front ends show them: text for tables and CSV, JSON data, lists typed by users."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["text_value", "json_value", "split_list", "is_number", "column_decimals", "fixed_value"]


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


#: Significant digits a column's largest number keeps when a column shares one precision.
COLUMN_DIGITS = 5
#: The most decimals a column shares; a column needing more is shown value by value.
MAX_DECIMALS = 8


def column_decimals(values: Any) -> int | None:
    """Return how many decimals every number of a column is shown with, or ``None``.

    The decimals are those the numbers need in compact form (6 significant digits),
    but no more than keep :data:`COLUMN_DIGITS` significant digits of the largest
    one: 224.41563 and 22.4 give 2 (``224.42``, ``22.40``), 0.001 and 0.0001 give 4
    (``0.0010``, ``0.0001``).
    ``None`` when the column holds no float (whole numbers stay as they are), or
    numbers too large or too small for fixed decimals (each is then shown compact).
    """
    floats = [
        float(value) for value in values
        if is_number(value) and not isinstance(value, int) and math.isfinite(value)
    ]
    if not floats:
        return None
    largest = max(abs(value) for value in floats)
    if largest >= 1e15:
        return None
    needed = 0
    for value in floats:
        text = f"{value:.6g}"
        if "e" in text:
            return None
        needed = max(needed, len(text.partition(".")[2]))
    leading = math.floor(math.log10(largest)) if largest > 0 else 0
    decimals = min(needed, max(0, COLUMN_DIGITS - 1 - leading))
    return decimals if decimals <= MAX_DECIMALS else None


def fixed_value(value: Any, decimals: int | None) -> str:
    """Return a number of a column as text with ``decimals`` (see :func:`column_decimals`);
    anything else, or ``decimals`` ``None``, as :func:`text_value` (compact) shows it."""
    if decimals is None or not is_number(value) or not math.isfinite(value):
        return text_value(value, compact=True)
    return f"{float(value):.{decimals}f}"


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
