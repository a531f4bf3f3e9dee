"""The text form of run filters: ``--doubledqn and -lr < 0.01 and final_mean > 200``.

:func:`parse_filter` turns an expression into the same :class:`~pyhermes.index.query.filters.Filter`
the Python API builds (:func:`~pyhermes.index.query.arg_filters.arg`, :func:`~pyhermes.index.query.arg_filters.flag`,
:func:`~pyhermes.index.query.arg_filters.info`, ``score.X``, ``run.X``). It is a small hand-written
tokenizer and recursive-descent parser; nothing in the text is ever evaluated as Python.

Grammar (keywords ``and or not in contains startswith true false`` in any case)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | atom
    atom       := "(" expr ")" | NAME OP value | NAME "in" "(" value ("," value)* ")"
                | NAME ("contains" | "startswith") value | NAME | "note" "~" value
    NAME       := ARGKEY | FIELD | "info." INFOKEY | "tag"
    OP         := "<" | "<=" | ">" | ">=" | "=" | "==" | "!="
    value      := NUMBER | "quoted" | 'quoted' | BAREWORD | "true" | "false"

* ``ARGKEY`` is an exec-arg key: ``-lr``, ``--doubledqn``, ``--env.name``, or a positional
  word such as ``train`` (letters, digits, ``_``, ``-`` and ``.``). Compared, it is
  ``arg(key) <op> value`` (a NUMBER is passed as ``int``/``float``, anything else as
  text; ``in (...)`` is ``arg(key).isin([...])``). Alone, it is ``flag(key)``.
  ``<``, ``<=``, ``>`` and ``>=`` order an exec arg by its number: the value must be a
  NUMBER (or ``inf``); a quoted value orders text (``--since < "2024-03-01"``).
  A key that no run has is an error once the filter meets an index or a list
  (:mod:`~pyhermes.index.query.known_keys`: ``no run has `--doubledqm`; did you mean
  `--doubledqn`?``): the parser marks each exec-arg condition with where it was written.
* ``FIELD`` is a score summary (``final_mean``, ``max``, ``count`` ...) or a run field
  (``start_time``, ``commit_hash``, ``finished`` ...), optionally written ``score.X`` /
  ``run.X``: ``score.X``/``run.X`` comparisons, ``in`` is ``.isin``; ``contains`` and
  ``startswith`` apply to text fields only. ``finished`` alone is ``run.finished == True``.
* ``info.KEY`` (or ``info."a key"``) is ``info(KEY)``: ``=``, ``!=``, ``in``,
  ``contains``, ``startswith``. Info values and text fields get the value exactly as
  written (``info.version = 1.10`` compares with ``"1.10"``).
* ``tag = paper`` (the run has the tag), ``tag != paper`` (has not), ``tag in (a, b)``
  (:mod:`~pyhermes.index.query.curation_filters`; an invalid tag is an error);
  ``note ~ text`` is ``note.contains(text)`` (some note holds it, ignoring the case of
  A-Z). ``~`` applies to ``note`` only; it is an operator where a word could start and
  a space, a quote or the end follows (in ``~/data`` or ``a~`` it is a character of a
  word). ``tag`` and ``note`` name no exec arg.
* ``=`` means ``==``. A chain ``a and b and c`` becomes one ``And`` of all its terms
  (``or`` likewise); ``not`` binds tighter than ``and``, ``and`` tighter than ``or``.
  Blank text means every run.
* A NUMBER is an integer, a decimal or scientific literal (``-3``, ``0.5``, ``1e-05``);
  ``inf`` and ``nan`` are words (an exec arg ordered by ``inf`` orders by infinity). After
  an operator ``-1`` is a number; at the start of a condition ``-lr`` is a key. Values
  that are not numbers (dates ``2024-03-01T15:45:00``, commit prefixes, words) are text. Quote a value holding spaces, ``( ) , < > = !`` or a
  keyword; inside quotes ``\\\\``, ``\\"`` and ``\\'`` are escapes, any other backslash is kept.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from pyhermes.errors import QueryError
from pyhermes.index.query.arg_filters import arg, flag, info, written_in
from pyhermes.index.query.curation_filters import check_tag_value, note, tag
from pyhermes.index.query.filters import (
    COMPARISONS,
    RUN_FIELDS,
    And,
    FieldRef,
    Filter,
    Or,
    everything,
    run,
    score,
    to_number,
)
from pyhermes.index.query.tokens import (
    INT_RE,
    KEYWORDS,
    NUMBER_RE,
    SEARCH,
    Token,
    caret_error,
    tokenize,
)
from pyhermes.index.store.layout import SUMMARY_COLUMNS

__all__ = ["as_filter", "parse_filter"]

_KEY_RE = re.compile(r"[A-Za-z0-9_.\-]*[A-Za-z0-9_][A-Za-z0-9_.\-]*", re.ASCII)
_CONDITION_HINT = (
    "a condition is a key (--doubledqn, -lr < 0.01, train), a field (final_mean > 200, "
    'finished), info.KEY = value, tag = NAME or note ~ "text", possibly after not or inside ( )'
)
#: Deepest nesting of parentheses and ``not`` accepted (deeper filters overflow the stack).
_MAX_DEPTH = 100
#: Most fixes tried in a row to turn "key value" text into a filter (see :func:`_joining_hint`).
_MAX_REPAIRS = 20
_JOIN_HINT = "join conditions with 'and' or 'or', and compare a key with an operator: -lr = 0.001"
_ORDERING = frozenset({"<", "<=", ">", ">="})


def _field_kind(name: str) -> str:
    """Return number, text, time or bool: how the field ``name`` compares."""
    return "number" if name in SUMMARY_COLUMNS else RUN_FIELDS[name]


@dataclass(frozen=True)
class _Name:
    """The left side of a condition: an exec-arg key, a field, an info key, tag or note."""

    kind: str  # "arg", "field", "info", "tag" or "note"
    key: str
    token: Token


@dataclass(frozen=True)
class _Value:
    """A value as written: ``kind`` is number, string, word or bool."""

    kind: str
    text: str
    token: Token


class _Parser:
    """Recursive-descent parser over the tokens of one expression."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0
        #: The name token of the last exec-arg key read alone (``--doubledqn``), if any.
        self.last_presence: Token | None = None

    # ------------------------------------------------------------------ helpers

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def error(self, message: str, position: int, hint: str = "") -> QueryError:
        return caret_error(self.text, message, position, hint)

    @staticmethod
    def is_keyword(token: Token, *words: str) -> bool:
        return token.kind == "word" and token.text.lower() in words

    # ------------------------------------------------------------------ grammar

    def parse(self) -> Filter:
        """Parse the whole text; raise QueryError on anything left over."""
        result = self.or_expr()
        token = self.peek()
        if token.kind != "end":
            hint = ""
            if token.kind in {"word", "string"}:
                hint = _joining_hint(self.repair(token))
            elif token.kind == ")":
                hint = "this ')' closes no '('"
            raise self.error(f"unexpected {token.describe()}", token.pos, hint)
        return result

    def repair(self, token: Token) -> str | None:
        """Return the text with one fix for ``token``, left over after a whole expression, or
        ``None`` when no fix is clear: ``=`` between a key read alone and a value after it
        (``-lr 0.001`` -> ``-lr = 0.001``), else ``and`` before a word that can start a
        condition (``--a --b`` -> ``--a and --b``)."""
        key = self.last_presence
        follows_key = key is not None and self.tokens[self.index - 1] is key
        is_number = token.kind == "word" and NUMBER_RE.fullmatch(token.text) is not None
        if follows_key and key is not None and key.text.startswith("-"):
            if token.kind == "string" or is_number or not token.text.startswith("-"):
                return _insert(self.text, token.pos, "=")
        if token.kind == "word" and not is_number:
            return _insert(self.text, token.pos, "and")
        return None

    def or_expr(self) -> Filter:
        parts = [self.and_expr()]
        while self.is_keyword(self.peek(), "or"):
            self.advance()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Filter:
        parts = [self.not_expr()]
        while self.is_keyword(self.peek(), "and"):
            self.advance()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_expr(self) -> Filter:
        token = self.peek()
        if not self.is_keyword(token, "not"):
            return self.atom()
        self.advance()
        with _Nesting(self, token):
            return ~self.not_expr()

    def atom(self) -> Filter:
        token = self.peek()
        if token.kind == "(":
            self.advance()
            if self.peek().kind == ")":
                raise self.error("empty parentheses", self.peek().pos, _CONDITION_HINT)
            with _Nesting(self, token):
                inner = self.or_expr()
            closing = self.peek()
            if closing.kind != ")":
                raise self.error(
                    f"expected ')', found {closing.describe()}",
                    closing.pos,
                    f"to close the '(' at position {token.pos}",
                )
            self.advance()
            return inner
        if token.kind != "word" or token.text.lower() in KEYWORDS:
            previous = self.tokens[self.index - 1] if self.index else None
            where = f" after {previous.describe()}" if previous is not None else ""
            raise self.error(
                f"expected a condition{where}, found {token.describe()}",
                token.pos,
                _CONDITION_HINT,
            )
        name = self.name()
        following = self.peek()
        if name.kind in {"tag", "note"}:
            self.check_curation(name, following)
        if following.kind == "op":
            self.advance()
            return self.compare(name, following, self.value(following))
        if self.is_keyword(following, "in"):
            self.advance()
            return self.isin(name, self.value_list(following))
        if self.is_keyword(following, "contains", "startswith"):
            self.advance()
            return self.text_match(name, following, self.value(following))
        return self.presence(name, following)

    def name(self) -> _Name:
        """Read the left side of a condition (the current token is a non-keyword word)."""
        token = self.advance()
        text = token.text
        if text in SUMMARY_COLUMNS or text in RUN_FIELDS:
            return _Name("field", text, token)
        if text in {"tag", "note"}:
            return _Name(text, text, token)
        prefix, dot, rest = text.partition(".")
        if (prefix == "score" and rest in SUMMARY_COLUMNS) or (
            prefix == "run" and rest in RUN_FIELDS
        ):
            return _Name("field", rest, token)
        if prefix == "info" and dot:
            if rest:
                return _Name("info", rest, token)
            quoted = self.peek()
            if quoted.kind == "string" and quoted.pos == token.pos + len(text) and quoted.value:
                self.advance()
                return _Name("info", quoted.value, token)
            raise self.error(
                "info. without a key",
                token.pos,
                'write info.KEY, e.g. info.comments or info."a key"',
            )
        if not _KEY_RE.fullmatch(text):
            raise self.error(
                f"invalid key '{text}'",
                token.pos,
                "a key is like -lr, --doubledqn or train: letters, digits, _, - and .",
            )
        return _Name("arg", text, token)

    def value(self, after: Token) -> _Value:
        """Read one value following ``after`` (an operator, ``contains``, ``(`` or ``,``)."""
        token = self.peek()
        if token.kind == "string":
            self.advance()
            return _Value("string", token.value, token)
        if token.kind == "op" and token.value == SEARCH:  # "-dir = ~": a word
            self.advance()
            return _Value("word", token.text, token)
        if token.kind == "word":
            lowered = token.text.lower()
            if lowered in {"true", "false"}:
                self.advance()
                return _Value("bool", token.text, token)
            if lowered not in KEYWORDS:
                self.advance()
                kind = "number" if NUMBER_RE.fullmatch(token.text) else "word"
                return _Value(kind, token.text, token)
        raise self.error(
            f"expected a value after {after.describe()}, found {token.describe()}",
            token.pos,
            f'quote a keyword used as a value: "{token.text}"' if token.kind == "word" else "",
        )

    def value_list(self, keyword: Token) -> list[_Value]:
        """Read ``( value, ... )`` after ``in``."""
        opening = self.peek()
        if opening.kind != "(":
            raise self.error(
                f"expected '(' after {keyword.describe()}, found {opening.describe()}",
                opening.pos,
                "list the values in parentheses: -seed in (1, 2, 3)",
            )
        self.advance()
        if self.peek().kind == ")":
            raise self.error("empty list", self.peek().pos, "in (...) needs at least one value")
        values = [self.value(opening)]
        while True:
            token = self.peek()
            if token.kind == ")":
                self.advance()
                return values
            if token.kind != ",":
                raise self.error(f"expected ',' or ')', found {token.describe()}", token.pos)
            self.advance()
            values.append(self.value(token))

    # ------------------------------------------------------------------ building filters

    def number(self, value: _Value) -> int | float:
        """Return a NUMBER value as int or float."""
        try:
            return int(value.text) if INT_RE.fullmatch(value.text) else float(value.text)
        except ValueError:  # an integer too long for int()
            raise self.error(f"number too long: {value.text[:20]}...", value.token.pos) from None

    def convert(self, name: _Name, value: _Value) -> Any:
        """Return ``value`` as the Python value compared with ``name``."""
        if value.kind == "string":
            return value.text
        if name.kind == "arg":
            return self.number(value) if value.kind == "number" else value.text
        if name.kind == "field":
            kind = _field_kind(name.key)
            if kind == "number" and value.kind == "number":
                return self.number(value)
            if kind == "bool" and value.kind == "bool":
                return value.text.lower() == "true"
        return value.text

    def field(self, name: _Name) -> FieldRef:
        return score[name.key] if name.key in SUMMARY_COLUMNS else run[name.key]

    def field_compare(self, ref: FieldRef, op: str, value: _Value, converted: Any) -> Filter:
        """Return ``ref <op> converted``; a wrong value type is reported at the value."""
        try:
            return COMPARISONS[op](ref, converted)
        except QueryError as exc:
            raise self.error(str(exc), value.token.pos) from exc

    def check_curation(self, name: _Name, following: Token) -> None:
        """Raise unless ``following`` may come after ``tag`` (=, !=, in) or ``note`` (~)."""
        if name.kind == "note":
            fits = following.kind == "op" and following.value == SEARCH
            wanted, hint = "'~'", 'search the notes with note ~ "text" (a space or quote after ~)'
        else:
            fits = following.kind == "op" and following.value in {"==", "!="}
            fits = fits or self.is_keyword(following, "in")
            wanted, hint = "=, != or in", "tag = NAME (has it), tag != NAME (has it not), tag in (A, B)"
        if not fits:
            raise self.error(
                f"expected {wanted} after '{name.key}', found {following.describe()}",
                following.pos,
                hint,
            )

    def tag_value(self, value: _Value) -> str:
        """Return ``value`` as a tag; an invalid tag is reported at the value."""
        try:
            return check_tag_value(value.text)
        except QueryError as exc:
            raise self.error(str(exc), value.token.pos) from exc

    def compare(self, name: _Name, op_token: Token, value: _Value) -> Filter:
        op = op_token.value
        if name.kind == "note":
            return note.contains(value.text)
        if op == SEARCH:
            raise self.error(
                f"'~' does not apply to '{name.token.text}'",
                op_token.pos,
                'only note ~ "text" searches; text fields and info.KEY have contains',
            )
        if name.kind == "tag":
            return COMPARISONS[op](tag, self.tag_value(value))
        converted = self.convert(name, value)
        if name.kind == "arg":
            if op in _ORDERING and value.kind != "string":
                converted = self.ordering_number(name, op_token, value)
            return written_in(COMPARISONS[op](arg(name.key), converted), self.text, name.token.pos)
        if name.kind == "field":
            return self.field_compare(self.field(name), op, value, converted)
        if op not in {"==", "!="}:
            raise self.error(
                f"'{op_token.text}' does not apply to info values",
                op_token.pos,
                "info.KEY compares as text with =, !=, in (...), contains or startswith",
            )
        return COMPARISONS[op](info(name.key), converted)

    def ordering_number(self, name: _Name, op_token: Token, value: _Value) -> int | float:
        """Return the unquoted ``value`` an exec arg is ordered by (``-lr < 0.01``) as a number.

        Raises:
            QueryError: the value is no number (``-lr < abc``, ``-lr < nan``), at the value.
        """
        if value.kind == "number":
            return self.number(value)
        number = to_number(value.text)
        if number is not None and number == number:  # inf orders; nan orders nothing
            return number
        why = "NaN orders nothing" if number is not None else f"{value.token.describe()} is not a number"
        raise self.error(
            f"'{op_token.text}' compares {name.key} as a number, and {why}",
            value.token.pos,
            f'to compare text, quote it: {name.key} {op_token.text} "{value.text}" '
            "(= and != compare text as written)",
        )

    def isin(self, name: _Name, values: list[_Value]) -> Filter:
        if name.kind == "tag":
            return tag.isin([self.tag_value(value) for value in values])
        converted = [self.convert(name, value) for value in values]
        if name.kind == "arg":
            return written_in(arg(name.key).isin(converted), self.text, name.token.pos)
        if name.kind == "field":
            ref = self.field(name)
            for value, item in zip(values, converted, strict=True):
                self.field_compare(ref, "==", value, item)
            return ref.isin(converted)
        parts = tuple(info(name.key) == item for item in converted)
        return parts[0] if len(parts) == 1 else Or(parts)

    def text_match(self, name: _Name, keyword: Token, value: _Value) -> Filter:
        method = keyword.text.lower()
        text = value.text
        if name.kind == "info":
            return getattr(info(name.key), method)(text)
        if name.kind == "field":
            kind = _field_kind(name.key)
            if kind != "text":
                text_fields = ", ".join(key for key, how in RUN_FIELDS.items() if how == "text")
                raise self.error(
                    f"{method} does not apply to the {kind} field {name.key}",
                    keyword.pos,
                    f"contains and startswith apply to text fields ({text_fields}) and info.KEY",
                )
            return getattr(self.field(name), method)(text)
        raise self.error(
            f"{method} does not apply to the exec-arg key {name.key}",
            keyword.pos,
            "compare exec args with <, <=, >, >=, =, != or in (...)",
        )

    def presence(self, name: _Name, following: Token) -> Filter:
        if name.kind == "arg":
            self.last_presence = name.token
            return written_in(flag(name.key), self.text, name.token.pos)
        if name.kind == "field" and name.key == "finished":
            return operator.eq(run.finished, True)
        if name.kind == "info":
            what, hint = (
                f"info.{name.key}",
                "compare it with =, !=, in (...), contains or startswith",
            )
        else:
            what, hint = name.key, "compare it with <, <=, >, >=, =, != or in (...)"
            if _field_kind(name.key) == "text":
                hint += ", contains or startswith"
        raise self.error(
            f"expected an operator after '{what}', found {following.describe()}",
            following.pos,
            hint,
        )


def _insert(text: str, position: int, word: str) -> str:
    """``text`` with ``word`` put before ``position``, spaced on both sides."""
    before = text[:position]
    return f"{before}{'' if before[-1:].isspace() else ' '}{word} {text[position:]}"


def _joining_hint(fixed: str | None) -> str:
    """The hint for a condition left over after a whole expression: the text with the
    fixes that make it parse (``did you mean `--doubledqn and -lr = 0.001`?``), when
    such fixes are found, then how conditions are joined."""
    for _ in range(_MAX_REPAIRS):
        if fixed is None:
            break
        parser = _Parser(fixed)
        try:
            parser.or_expr()
        except QueryError:
            break
        token = parser.peek()
        if token.kind == "end":
            return f"did you mean `{fixed}`? (a key and its value take an operator, conditions and/or)"
        if token.kind not in {"word", "string"}:
            break
        fixed = parser.repair(token)
    return _JOIN_HINT


class _Nesting:
    """Context manager counting nesting depth; refuses expressions nested too deeply."""

    def __init__(self, parser: _Parser, token: Token) -> None:
        self.parser = parser
        self.token = token

    def __enter__(self) -> None:
        self.parser.depth += 1
        if self.parser.depth > _MAX_DEPTH:
            raise self.parser.error(
                f"expression nested too deeply (more than {_MAX_DEPTH} levels of ( and not)",
                self.token.pos,
            )

    def __exit__(self, *exc_info: object) -> None:
        self.parser.depth -= 1


def parse_filter(text: str) -> Filter:
    """Parse a filter expression such as ``--doubledqn and -lr < 0.01 and final_mean > 200``.

    Returns:
        The equivalent :class:`~pyhermes.index.query.filters.Filter`; ``everything`` for blank text.

    Raises:
        QueryError: the text is not a valid expression, or a value does not suit its field.
            ``position`` is the 0-based offset of the offending token (the text's length
            when something is missing at the end); the message quotes the text with a
            caret under that position.
    """
    if not text.strip():
        return everything
    return _Parser(text).parse()


def as_filter(condition: Filter | str | None) -> Filter:
    """Return ``condition`` as a :class:`~pyhermes.index.query.filters.Filter`: text is parsed with
    :func:`parse_filter`, ``None`` and blank text are ``everything``.

    Raises:
        QueryError: the text is not a valid expression.
        TypeError: ``condition`` is neither.
    """
    if condition is None:
        return everything
    if isinstance(condition, Filter):
        return condition
    if isinstance(condition, str):
        return parse_filter(condition)
    raise TypeError(f"expected a pyhermes filter or an expression string, not {type(condition).__name__}")

