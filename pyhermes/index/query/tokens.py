"""The tokens of the filter grammar (:mod:`pyhermes.index.query.grammar`) and its error format.

:func:`tokenize` splits filter text into :class:`Token` objects (words, quoted
strings, operators, parentheses, commas, and a last ``end`` token);
:func:`caret_error` builds the :class:`~pyhermes.errors.QueryError` every grammar
error is, which quotes the text with a caret under the offending position. The
constants (:data:`OPERATORS`, :data:`KEYWORDS`, :data:`SEARCH`, :data:`NUMBER_RE`,
:data:`INT_RE`) say what the tokenizer and the parser recognise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyhermes.errors import QueryError

__all__ = [
    "OPERATORS",
    "KEYWORDS",
    "SEARCH",
    "INT_RE",
    "NUMBER_RE",
    "Token",
    "caret_error",
    "caret_lines",
    "tokenize",
]

#: Operators as written -> the Python comparison they stand for.
OPERATORS: dict[str, str] = {
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "=": "==",
    "==": "==",
    "!=": "!=",
}

KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "startswith", "true", "false"})
#: The one operator that is not made of ``_OP_CHARS``: "contains, ignoring case" (``note ~ x``).
SEARCH = "~"
INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)

_OP_CHARS = "<>=!"
_WORD_STOP = frozenset("(),\"'" + _OP_CHARS)
_SEARCH_ENDS = frozenset("\"'")
_ESCAPABLE = frozenset("\\\"'")


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is word, string, op, ``(``, ``)``, ``,`` or end."""

    kind: str
    text: str  # the source text of the token
    pos: int
    value: str  # the unescaped string, the normalized operator, else the text

    def describe(self) -> str:
        """Return the token as an error message names it."""
        if self.kind == "end":
            return "end of expression"
        return self.text if self.kind == "string" else f"'{self.text}'"


def caret_lines(text: str, position: int) -> list[str]:
    """Return two lines: ``text`` (blanks shown as spaces) and a caret under ``position``."""
    shown = "".join(" " if char.isspace() else char for char in text)
    return [f"  {shown}", f"  {' ' * position}^"]


def caret_error(text: str, message: str, position: int, hint: str = "") -> QueryError:
    """Return a QueryError whose message quotes ``text`` with a caret under ``position``.

    The message is ``<message> at position <n>``, the text, the caret line and,
    when given, ``hint`` on a last line.
    """
    lines = [f"{message} at position {position}", *caret_lines(text, position)]
    if hint:
        lines.append(hint)
    return QueryError("\n".join(lines), position)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token.

    Raises:
        QueryError: an unterminated string or an unknown operator such as ``=<``.
    """
    tokens: list[Token] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char.isspace():
            index += 1
        elif char in "(),":
            tokens.append(Token(char, char, index, char))
            index += 1
        elif char in _OP_CHARS:
            end = index
            while end < length and text[end] in _OP_CHARS:
                end += 1
            written = text[index:end]
            if written not in OPERATORS:
                raise caret_error(
                    text,
                    f"unknown operator '{written}'",
                    index,
                    "the operators are <, <=, >, >=, =, == and !=",
                )
            tokens.append(Token("op", written, index, OPERATORS[written]))
            index = end
        elif char == SEARCH and _ends_search(text, index + 1):
            tokens.append(Token("op", char, index, char))
            index += 1
        elif char in "\"'":
            end, value = _read_string(text, index)
            tokens.append(Token("string", text[index:end], index, value))
            index = end
        else:
            end = index
            while end < length and not text[end].isspace() and text[end] not in _WORD_STOP:
                end += 1
            tokens.append(Token("word", text[index:end], index, text[index:end]))
            index = end
    tokens.append(Token("end", "", length, ""))
    return tokens


def _ends_search(text: str, index: int) -> bool:
    """Whether a ``~`` starting a token before ``index`` is the operator: the end, a space or
    a quote follows it."""
    return index >= len(text) or text[index].isspace() or text[index] in _SEARCH_ENDS


def _read_string(text: str, start: int) -> tuple[int, str]:
    """Read the quoted string opening at ``start``; return (offset after it, its value).

    Raises:
        QueryError: the string has no closing quote (position of the opening quote).
    """
    quote = text[start]
    parts: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in _ESCAPABLE:
            parts.append(text[index + 1])
            index += 2
        elif char == quote:
            return index + 1, "".join(parts)
        else:
            parts.append(char)
            index += 1
    raise caret_error(text, f"unterminated string: no closing {quote}", start)
