"""Tests of the filter expression grammar (:mod:`pyhermes.index.query.grammar`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, insert, select

from pyhermes.errors import QueryError
from pyhermes.index.query import grammar
from pyhermes.index.query.arg_filters import arg, flag, info
from pyhermes.index.query.filters import And, Filter, Or, everything, run, score
from pyhermes.index.query.grammar import parse_filter
from pyhermes.index.store.models import Base, arg_table, info_table, run_table


def sql(condition: Filter) -> str:
    """Return the SQL of ``condition`` with its parameters inlined."""
    return str(condition.clause().compile(compile_kwargs={"literal_binds": True}))


def assert_same(parsed: Filter, expected: Filter) -> None:
    """Assert that two filters have the same repr and compile to the same SQL."""
    assert repr(parsed) == repr(expected)
    assert sql(parsed) == sql(expected)


# --------------------------------------------------------------------------- documented forms

FORMS: list[tuple[str, Filter]] = [
    # presence: flags, option keys and positionals
    ("--doubledqn", flag("--doubledqn")),
    ("-lr", flag("-lr")),
    ("train", flag("train")),
    ("--env.name", flag("--env.name")),
    ("-x_1", flag("-x_1")),
    # exec-arg comparisons with every operator
    ("-lr < 0.01", arg("-lr") < 0.01),
    ("-lr <= 0.01", arg("-lr") <= 0.01),
    ("-lr > 0.01", arg("-lr") > 0.01),
    ("-lr >= 0.01", arg("-lr") >= 0.01),
    ("-lr = 0.01", arg("-lr") == 0.01),
    ("-lr == 0.01", arg("-lr") == 0.01),
    ("-lr != 0.01", arg("-lr") != 0.01),
    ("-lr<0.01", arg("-lr") < 0.01),
    # numbers: ints, negatives, floats, scientific; inf and nan are words
    ("-seed = 7", arg("-seed") == 7),
    ("-lr > -1", arg("-lr") > -1),
    ("-lr>-1", arg("-lr") > -1),
    ("-lr >= -0.5", arg("-lr") >= -0.5),
    ("-lr = 1e-3", arg("-lr") == 0.001),
    ("-lr = 1E-05", arg("-lr") == 1e-05),
    ("-lr = +2", arg("-lr") == 2),
    ("-lr = .5", arg("-lr") == 0.5),
    ("-lr < inf", arg("-lr") < float("inf")),  # ordering an exec arg takes a number
    ("-lr >= -Infinity", arg("-lr") >= float("-inf")),
    ('-lr < "abc"', arg("-lr") < "abc"),  # a quoted value orders text
    ('--since < "2024-03-01"', arg("--since") < "2024-03-01"),
    ("-lr = abc", arg("-lr") == "abc"),
    ("-lr != nan", arg("-lr") != "nan"),
    # text values: barewords, quoted strings, multi-value options, keywords quoted
    ("--env.name = CartPole-v1", arg("--env.name") == "CartPole-v1"),
    ('-hidden = "64 64"', arg("-hidden") == "64 64"),
    ("-name = 'it\\'s'", arg("-name") == "it's"),
    ('-name = "say \\"hi\\""', arg("-name") == 'say "hi"'),
    ('-path = "a\\\\b"', arg("-path") == "a\\b"),
    ('-path = "C:\\runs\\x"', arg("-path") == "C:\\runs\\x"),
    ('-mode = "and"', arg("-mode") == "and"),
    ("-mode = ''", arg("-mode") == ""),
    ("--cuda = true", arg("--cuda") == "true"),
    ("--cuda = TRUE", arg("--cuda") == "TRUE"),
    ("-date = 2024-03-01", arg("-date") == "2024-03-01"),
    ("-rate = -relu", arg("-rate") == "-relu"),
    ('-es in (1, 2.5, -3, foo, "a b")', arg("-es").isin([1, 2.5, -3, "foo", "a b"])),
    ("-es IN (1)", arg("-es").isin([1])),
    # score summaries
    ("final_mean > 200", score.final_mean > 200),
    ("final_mean > 200.5", score.final_mean > 200.5),
    ("max >= -1e-3", score.max >= -0.001),
    ("count = 10", score.count == 10),
    ("best_window_mean != 0", score.best_window_mean != 0),
    ("score.final_mean < -5", score.final_mean < -5),
    ("final_mean in (1, 2)", score.final_mean.isin([1, 2])),
    ("final_mean > inf", score.final_mean > "inf"),
    # run fields
    ("execution_time < 3600", run.execution_time < 3600),
    ("job_idx in (0, 1)", run.job_idx.isin([0, 1])),
    ("start_time >= 2024-03-01", run.start_time >= "2024-03-01"),
    ("end_time < 2024-03-01T15:45:00", run.end_time < "2024-03-01T15:45:00"),
    ('start_time > "2024-03-01 15:45"', run.start_time > "2024-03-01 15:45"),
    ("commit_hash startswith ab12", run.commit_hash.startswith("ab12")),
    ("commit_hash startswith 1e5", run.commit_hash.startswith("1e5")),
    ("commit_hash = 0123", run.commit_hash == "0123"),
    ("run.commit_hash = abc", run.commit_hash == "abc"),
    ('comments contains "sweep"', run.comments.contains("sweep")),
    ("comments CONTAINS 50%_off", run.comments.contains("50%_off")),
    ("script_name in (train.py, eval.py)", run.script_name.isin(["train.py", "eval.py"])),
    ("experiment_name != baseline", run.experiment_name != "baseline"),
    ("identifier startswith 2024_03", run.identifier.startswith("2024_03")),
    ("identifier = 2024_03_01_1_ab12", run.identifier == "2024_03_01_1_ab12"),
    ("finished", run.finished == True),  # noqa: E712 - a filter, not a comparison
    ("run.finished", run.finished == True),  # noqa: E712
    ("finished = false", run.finished == False),  # noqa: E712
    ("finished != TRUE", run.finished != True),  # noqa: E712
    ("finished = 1", run.finished == "1"),
    # info values, compared as text exactly as written
    ("info.comments = hello", info("comments") == "hello"),
    ("info.version != 1.10", info("version") != "1.10"),
    ('info.comments contains "a b"', info("comments").contains("a b")),
    ("info.start_time startswith 2024", info("start_time").startswith("2024")),
    ("info.env.name = x", info("env.name") == "x"),
    ('info."my key" = v', info("my key") == "v"),
    ("info.x in (a, 1.0)", (info("x") == "a") | (info("x") == "1.0")),
    ("info.x in (a)", info("x") == "a"),
    ("info.flag = true", info("flag") == "true"),
    # keywords in any case
    ("NOT --doubledqn", ~flag("--doubledqn")),
    ("--a AND --b Or --c", (flag("--a") & flag("--b")) | flag("--c")),
]


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[text for text, _ in FORMS])
def test_documented_forms(text: str, expected: Filter) -> None:
    assert_same(parse_filter(text), expected)


def test_number_types() -> None:
    """A NUMBER reaches arg() as int or float, never as text."""
    assert type(parse_filter("-seed = 7").value) is int  # type: ignore[attr-defined]
    assert type(parse_filter("-seed = 7.0").value) is float  # type: ignore[attr-defined]
    assert type(parse_filter("-seed = 1e3").value) is float  # type: ignore[attr-defined]
    assert type(parse_filter('-seed = "7"').value) is str  # type: ignore[attr-defined]


def test_blank_text_is_everything() -> None:
    assert parse_filter("") is everything
    assert parse_filter("  \n") is everything
    assert grammar.as_filter("   ") is everything


# --------------------------------------------------------------------------- precedence

A, B, C, D = flag("--a"), flag("--b"), flag("--c"), flag("--d")

PRECEDENCE: list[tuple[str, Filter]] = [
    ("--a or --b and --c", A | (B & C)),
    ("--a and --b or --c", (A & B) | C),
    ("--a and --b or --c and --d", (A & B) | (C & D)),
    ("not --a and --b", ~A & B),
    ("not --a or --b", ~A | B),
    ("--a and not --b", A & ~B),
    ("not (--a and --b)", ~(A & B)),
    ("not not --a", ~~A),
    ("--a and (--b or --c)", A & (B | C)),
    ("(--a or --b) and --c", (A | B) & C),
    ("(--a and --b) and --c", (A & B) & C),
    ("--a and (--b and --c)", A & (B & C)),
    ("((--a))", A),
    ("--a and --b and --c", And((A, B, C))),
    ("--a or --b or --c or --d", Or((A, B, C, D))),
    ("not --a and not --b or not --c", Or((And((~A, ~B)), ~C))),
]


@pytest.mark.parametrize(("text", "expected"), PRECEDENCE, ids=[text for text, _ in PRECEDENCE])
def test_precedence(text: str, expected: Filter) -> None:
    assert_same(parse_filter(text), expected)


def test_chain_is_one_node_with_the_sql_of_nested_operators() -> None:
    """``a and b and c`` is one And; its SQL is that of ``a & b & c``."""
    parsed = parse_filter("--a and --b and --c")
    assert sql(parsed) == sql(A & B & C)
    parsed = parse_filter("--a or --b or --c")
    assert sql(parsed) == sql(A | B | C)


def test_long_chain_does_not_overflow() -> None:
    text = " or ".join(f"-seed = {i}" for i in range(2000))
    parsed = parse_filter(text)
    assert isinstance(parsed, Or) and len(parsed.parts) == 2000
    assert "-seed == 1999" in repr(parsed)


# --------------------------------------------------------------------------- errors

ERRORS: list[tuple[str, int, str]] = [
    ("--doubledqn )", 12, "unexpected ')'"),
    ("()", 1, "empty parentheses"),
    ("--a and ( )", 10, "empty parentheses"),
    ('-lr < "abc', 6, "unterminated string"),
    ("-lr < 'abc\\'", 6, "unterminated string"),
    ("-lr =< 1", 4, "unknown operator '=<'"),
    ("-lr => 1", 4, "unknown operator '=>'"),
    ("-lr <> 1", 4, "unknown operator '<>'"),
    ("-lr ! 1", 4, "unknown operator '!'"),
    ("-lr === 1", 4, "unknown operator '==='"),
    ("-lr <", 5, "expected a value after '<', found end of expression"),
    ("-lr < and --b", 6, "expected a value after '<', found 'and'"),
    ("-lr = )", 6, "expected a value after '='"),
    ("info.x contains", 15, "expected a value after 'contains'"),
    ("-lr in ()", 8, "empty list"),
    ("-lr in (1,)", 10, "expected a value after ','"),
    ("-lr in 1", 7, "expected '(' after 'in'"),
    ("-lr in (1 2)", 10, "expected ',' or ')'"),
    ("-lr in (1", 9, "expected ',' or ')', found end of expression"),
    ("--a and", 7, "expected a condition after 'and', found end of expression"),
    ("--a or", 6, "expected a condition after 'or'"),
    ("--a and or --b", 8, "expected a condition after 'and', found 'or'"),
    ("not", 3, "expected a condition after 'not'"),
    ("and --a", 0, "expected a condition, found 'and'"),
    ("< 3", 0, "expected a condition, found '<'"),
    ('"a" = 1', 0, 'expected a condition, found "a"'),
    ("true", 0, "expected a condition, found 'true'"),
    ("--a --b", 4, "unexpected '--b'"),
    ("final_mean > 200 300", 17, "unexpected '300'"),
    ("--a ) and --b", 4, "unexpected ')'"),
    ("(--a", 4, "expected ')', found end of expression"),
    ("(--a --b)", 5, "expected ')', found '--b'"),
    ("final_mean > abc", 13, "final_mean compares with a number, not 'abc'"),
    ('max = "x"', 6, "max compares with a number"),
    ("final_mean in (1, x)", 18, "final_mean compares with a number, not 'x'"),
    ("start_time > yesterday", 13, "start_time compares with a date"),
    ("start_time < 2024", 13, "start_time compares with a date"),
    ("finished = maybe", 11, "finished compares with true or false"),
    ("info. = 3", 0, "info. without a key"),
    ('info."" = 3', 0, "info. without a key"),
    ('info. "a" = 3', 0, "info. without a key"),
    ("info.x > 3", 7, "'>' does not apply to info values"),
    ("info.x", 6, "expected an operator after 'info.x'"),
    ("final_mean", 10, "expected an operator after 'final_mean', found end of expression"),
    ("final_mean and --a", 11, "expected an operator after 'final_mean', found 'and'"),
    ("-lr contains x", 4, "contains does not apply to the exec-arg key -lr"),
    ("-lr startswith x", 4, "startswith does not apply to the exec-arg key -lr"),
    ("final_mean startswith 2", 11, "startswith does not apply to the number field final_mean"),
    ("start_time contains 2024", 11, "contains does not apply to the time field start_time"),
    ("x/y = 1", 0, "invalid key 'x/y'"),
    ("--a and -", 8, "invalid key '-'"),
    ("-lr = 1" + "0" * 5000, 6, "number too long"),
    ("(" * 101 + "--a" + ")" * 101, 100, "nested too deeply"),
    ("-lr < abc", 6, "'<' compares -lr as a number, and 'abc' is not a number"),
    ("-lr >= 2024-03-01", 7, "'>=' compares -lr as a number, and '2024-03-01' is not a number"),
    ("--a and -seed > true", 16, "'>' compares -seed as a number, and 'true' is not a number"),
    ("-lr <= nan", 7, "'<=' compares -lr as a number, and NaN orders nothing"),
    ("not " * 101 + "--a", 400, "nested too deeply"),
]


@pytest.mark.parametrize(("text", "position", "message"), ERRORS, ids=[e[0][:40] for e in ERRORS])
def test_error_position_and_caret(text: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_filter(text)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.position == position
    lines = str(error).split("\n")
    assert message in lines[0]
    assert lines[0].endswith(f" at position {position}")
    assert lines[1] == "  " + text
    assert lines[2] == "  " + " " * position + "^"


def test_ordering_an_exec_arg_by_a_word_says_to_quote_it() -> None:
    with pytest.raises(QueryError) as caught:
        parse_filter("-lr < abc")
    assert str(caught.value).split("\n")[-1].startswith('to compare text, quote it: -lr < "abc"')
    assert repr(parse_filter('-lr < "abc"')) == repr(arg("-lr") < "abc")


JOINED: list[tuple[str, int, str]] = [
    ("--doubledqn -lr 0.001", 12, "--doubledqn and -lr = 0.001"),
    ("-lr 0.001", 4, "-lr = 0.001"),
    ("--a --b", 4, "--a and --b"),
    ('-name "a b"', 6, '-name = "a b"'),
    ("-env CartPole-v1 -seed 3", 5, "-env = CartPole-v1 and -seed = 3"),
    ("-lr = 0.1 -bs 64 or --x", 10, "-lr = 0.1 and -bs = 64 or --x"),
    ("--doubledqn -lr 0.001 and final_mean > 200", 12,
     "--doubledqn and -lr = 0.001 and final_mean > 200"),
    ("-lr -1", 4, "-lr = -1"),
]


@pytest.mark.parametrize(("text", "position", "fixed"), JOINED, ids=[text for text, _, _ in JOINED])
def test_conditions_side_by_side_suggest_the_fixed_text(text: str, position: int, fixed: str) -> None:
    """A key and a value side by side (``-lr 0.001``) get the operator, two conditions ``and``;
    the suggestion parses."""
    with pytest.raises(QueryError) as caught:
        parse_filter(text)
    assert caught.value.position == position
    assert f"did you mean `{fixed}`?" in str(caught.value).split("\n")[-1]
    parse_filter(fixed)


@pytest.mark.parametrize("text", ["final_mean > 200 300", "train 5", "--a = 1 2"])
def test_leftovers_without_a_clear_fix_get_the_general_hint(text: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_filter(text)
    hint = str(caught.value).split("\n")[-1]
    assert "did you mean" not in hint
    assert hint.startswith("join conditions with 'and' or 'or', and compare a key with an operator")


def test_caret_example_from_the_docs() -> None:
    with pytest.raises(QueryError) as caught:
        parse_filter("--doubledqn )")
    assert str(caught.value).startswith(
        "unexpected ')' at position 12\n  --doubledqn )\n              ^"
    )


def test_caret_lines_up_across_tabs_and_newlines() -> None:
    text = "--a\tand\n  )"
    with pytest.raises(QueryError) as caught:
        parse_filter(text)
    lines = str(caught.value).split("\n")
    assert caught.value.position == 10
    assert lines[1] == "  --a and   )"
    assert lines[2].index("^") == lines[1].index(")")


def test_field_error_keeps_the_field_message_as_cause() -> None:
    with pytest.raises(QueryError) as caught:
        parse_filter("--a and final_mean >= abc")
    assert caught.value.position == 22
    assert isinstance(caught.value.__cause__, QueryError)
    assert caught.value.__cause__.position is None


def test_as_filter_reports_errors_with_positions() -> None:
    with pytest.raises(QueryError) as caught:
        grammar.as_filter("--doubledqn and -lr <")
    assert caught.value.position == 21


# --------------------------------------------------------------------------- round trip

_KEYWORDS = {"and", "or", "not", "in", "contains", "startswith", "true", "false"}
_OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "==", "==": "==", "!=": "!="}
_COMPARE = {
    "<": lambda ref, value: ref < value,
    "<=": lambda ref, value: ref <= value,
    ">": lambda ref, value: ref > value,
    ">=": lambda ref, value: ref >= value,
    "==": lambda ref, value: ref == value,
    "!=": lambda ref, value: ref != value,
}

# A node is (text, filter, precedence): 1 or, 2 and, 3 not, 4 atom.
Node = tuple[str, Filter, int]


def quote(value: str, mark: str) -> str:
    """Render ``value`` as a quoted string of the grammar."""
    escaped = value.replace("\\", "\\\\").replace(mark, "\\" + mark)
    return mark + escaped + mark


def keyword(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize()])


numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.001, 1e-05, -1e-05, 0.5, -2.5, 1e16, -0.0]),
)
barewords = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:/+-]{0,10}", fullmatch=True).filter(
    lambda word: word.lower() not in _KEYWORDS
)
strings = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@st.composite
def text_values(draw: st.DrawFn, numbers_as_text: bool = True) -> tuple[str, str]:
    """(rendering, the str value the parser yields) of a text value."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        word = draw(barewords)
        return word, word
    if choice == 1 and numbers_as_text:
        number = draw(numbers)
        return repr(number), repr(number)  # a number compared as text stays as written
    value = draw(strings)
    return quote(value, draw(st.sampled_from(["'", '"']))), value


@st.composite
def arg_values(draw: st.DrawFn) -> tuple[str, Any]:
    """(rendering, Python value) of an exec-arg value: numbers stay numbers."""
    if draw(st.booleans()):
        number = draw(numbers)
        return repr(number), number
    return draw(text_values(numbers_as_text=False))


def space(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["", " ", "  "]))


def value_list(
    draw: st.DrawFn, values: st.SearchStrategy[tuple[str, Any]]
) -> tuple[str, list[Any]]:
    items = draw(st.lists(values, min_size=1, max_size=4))
    text = "(" + ", ".join(rendered for rendered, _ in items) + ")"
    return text, [value for _, value in items]


@st.composite
def arg_leaves(draw: st.DrawFn) -> Node:
    key = draw(st.sampled_from(["--doubledqn", "-lr", "-es", "--env.name", "train", "-x_1"]))
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return key, flag(key), 4
    if choice == 1:
        written = draw(st.sampled_from(sorted(_OPS)))
        rendered, value = draw(arg_values())
        if _OPS[written] in {"<", "<=", ">", ">="} and not rendered.startswith(("'", '"')):
            number = draw(numbers)  # an unquoted word does not order an exec arg
            rendered, value = repr(number), number
        text = f"{key}{space(draw)}{written}{space(draw)}{rendered}"
        return text, _COMPARE[_OPS[written]](arg(key), value), 4
    rendered, values = value_list(draw, arg_values())
    return f"{key} {draw(keyword('in'))} {rendered}", arg(key).isin(values), 4


@st.composite
def field_leaves(draw: st.DrawFn) -> Node:
    choice = draw(st.integers(0, 4))
    written = draw(st.sampled_from(sorted(_OPS)))
    if choice == 0:
        name = draw(st.sampled_from(["final_mean", "max", "count", "execution_time"]))
        ref = score[name] if name != "execution_time" else run.execution_time
        shown = draw(
            st.sampled_from([name, f"{'run' if name == 'execution_time' else 'score'}.{name}"])
        )
        number = draw(numbers)
        text = f"{shown}{space(draw)}{written}{space(draw)}{number!r}"
        return text, _COMPARE[_OPS[written]](ref, number), 4
    if choice == 1:
        name = draw(st.sampled_from(["commit_hash", "comments", "script_name"]))
        rendered, value = draw(text_values())
        if draw(st.booleans()):
            method = draw(st.sampled_from(["contains", "startswith"]))
            text = f"{name} {draw(keyword(method))} {rendered}"
            return text, getattr(run[name], method)(value), 4
        return f"{name} {written} {rendered}", _COMPARE[_OPS[written]](run[name], value), 4
    if choice == 2:
        moment = draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)))
        shown = moment.isoformat()
        rendered = shown if draw(st.booleans()) else quote(shown.replace("T", " "), '"')
        value = shown if rendered == shown else shown.replace("T", " ")
        return f"start_time {written} {rendered}", _COMPARE[_OPS[written]](run.start_time, value), 4
    if choice == 3:
        if draw(st.booleans()):
            return "finished", run.finished == True, 4  # noqa: E712
        state = draw(st.booleans())
        op = draw(st.sampled_from(["=", "==", "!="]))
        written_state = draw(keyword(str(state).lower()))
        return f"finished {op} {written_state}", _COMPARE[_OPS[op]](run.finished, state), 4
    numbers_in = value_list(draw, numbers.map(lambda number: (repr(number), number)))
    return f"final_mean in {numbers_in[0]}", score.final_mean.isin(numbers_in[1]), 4


@st.composite
def info_leaves(draw: st.DrawFn) -> Node:
    key = draw(st.sampled_from(["comments", "env.name", "my key"]))
    shown = f'info."{key}"' if " " in key else f"info.{key}"
    choice = draw(st.integers(0, 2))
    if choice == 0:
        op = draw(st.sampled_from(["=", "==", "!="]))
        rendered, value = draw(text_values())
        return f"{shown} {op} {rendered}", _COMPARE[_OPS[op]](info(key), value), 4
    if choice == 1:
        method = draw(st.sampled_from(["contains", "startswith"]))
        rendered, value = draw(text_values())
        return f"{shown} {draw(keyword(method))} {rendered}", getattr(info(key), method)(value), 4
    rendered, values = value_list(draw, text_values())
    parts = tuple(info(key) == value for value in values)
    expected = parts[0] if len(parts) == 1 else Or(parts)
    return f"{shown} in {rendered}", expected, 4


def wrap(node: Node, needs_parens: bool) -> str:
    return f"({node[0]})" if needs_parens else node[0]


def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    @st.composite
    def negation(draw: st.DrawFn) -> Node:
        child = draw(children)
        return f"{draw(keyword('not'))} {wrap(child, child[2] < 3)}", ~child[1], 3

    @st.composite
    def chain(draw: st.DrawFn) -> Node:
        word, precedence, combine = draw(st.sampled_from([("and", 2, And), ("or", 1, Or)]))
        parts = draw(st.lists(children, min_size=2, max_size=3))
        text = ""
        for index, part in enumerate(parts):
            if index:
                text += f" {draw(keyword(word))} "
            # an operand of the same or lower precedence is bracketed, else it would join the chain
            text += wrap(part, part[2] <= precedence)
        return text, combine(tuple(part[1] for part in parts)), precedence

    @st.composite
    def parenthesized(draw: st.DrawFn) -> Node:
        child = draw(children)
        return f"({space(draw)}{child[0]}{space(draw)})", child[1], 4

    return st.one_of(negation(), chain(), parenthesized())


filter_trees = st.recursive(
    st.one_of(arg_leaves(), field_leaves(), info_leaves()), extend, max_leaves=5
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filter_trees)
def test_round_trip(node: Node) -> None:
    text, expected, _ = node
    assert_same(parse_filter(text), expected)


@given(st.text(alphabet="-lr<=>!()',\" andotiuex01.", max_size=30))
@settings(max_examples=200, deadline=None)
def test_any_text_parses_or_raises_query_error(text: str) -> None:
    """Garbage never escapes as anything but a QueryError with a position inside the text."""
    try:
        parse_filter(text)
    except QueryError as error:
        assert error.position is not None and 0 <= error.position <= len(text)
        assert re.search(r" at position \d+$", str(error).split("\n")[0])


# --------------------------------------------------------------------------- end to end


def test_as_filter_end_to_end() -> None:
    """``as_filter`` parses the text, and the filter selects the right runs from SQLite."""
    condition = grammar.as_filter("--doubledqn and -lr < 0.01 and final_mean > 200")
    expected = And((flag("--doubledqn"), arg("-lr") < 0.01, score.final_mean > 200))
    assert_same(condition, expected)
    assert sql(condition) == sql(
        flag("--doubledqn") & (arg("-lr") < 0.01) & (score.final_mean > 200)
    )

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    runs = {
        # name: (final_mean, exec args as (raw, key, value, num), info)
        "good": (
            250.0,
            [("--doubledqn", "--doubledqn", None, None), ("-lr 0.001", "-lr", "0.001", 0.001)],
        ),
        "no_flag": (250.0, [("-lr 0.001", "-lr", "0.001", 0.001)]),
        "high_lr": (
            250.0,
            [("--doubledqn", "--doubledqn", None, None), ("-lr 0.1", "-lr", "0.1", 0.1)],
        ),
        "low_score": (
            100.0,
            [("--doubledqn", "--doubledqn", None, None), ("-lr 0.001", "-lr", "0.001", 0.001)],
        ),
    }
    with engine.begin() as connection:
        for run_id, (name, (final_mean, args)) in enumerate(runs.items(), start=1):
            connection.execute(
                insert(run_table).values(
                    id=run_id,
                    path=f"experiments/s/e/{name}",
                    parent="experiments/s/e",
                    identifier=name,
                    finished=True,
                    score_final_mean=final_mean,
                    read_at=0.0,
                    settled=True,
                )
            )
            for position, (raw, key, value, num) in enumerate(args):
                connection.execute(
                    insert(arg_table).values(
                        run_id=run_id, position=position, raw=raw, key=key, value=value, num=num
                    )
                )
            connection.execute(
                insert(info_table).values(run_id=run_id, key="comments", value=f"sweep {name}")
            )

        def names(text: str) -> list[str]:
            statement = select(run_table.c.identifier).where(grammar.as_filter(text).clause())
            return sorted(connection.execute(statement.order_by(run_table.c.id)).scalars())

        assert names("--doubledqn and -lr < 0.01 and final_mean > 200") == ["good"]
        assert names("not --doubledqn or -lr >= 0.1") == ["high_lr", "no_flag"]
        assert names('info.comments contains "low" or identifier in (good, x)') == [
            "good",
            "low_score",
        ]
        assert names("finished and final_mean <= 100") == ["low_score"]
    engine.dispose()
