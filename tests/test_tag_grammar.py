"""The filter grammar of a run's tags and notes: ``tag = paper``, ``note ~ "diverged"``.

Parsing only (the SQL these filters render is checked against in-memory
matching in tests/test_curation_index.py).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyhermes import rundir
from pyhermes.errors import QueryError
from pyhermes.index.query.arg_filters import arg, flag, info
from pyhermes.index.query.curation_filters import NoteContains, TagIn, note, tag
from pyhermes.index.query.filters import And, Filter, Not, Or, Params, everything, score
from pyhermes.index.query.grammar import parse_filter


def sql(condition: Filter) -> str:
    """The SQL of ``condition`` with its parameters inlined."""
    return str(condition.clause().compile(compile_kwargs={"literal_binds": True}))


def assert_same(parsed: Filter, expected: Filter) -> None:
    assert repr(parsed) == repr(expected)
    assert sql(parsed) == sql(expected)


FORMS: list[tuple[str, Filter]] = [
    ("tag = paper", tag == "paper"),
    ("tag == paper", tag == "paper"),
    ('tag = "best run"', tag == "best run"),
    ("tag = 'it\\'s'", tag == "it's"),
    ('tag = "  padded "', tag == "padded"),
    ("tag = 2024", tag == "2024"),
    ("tag = true", tag == "true"),
    ('tag = "and"', tag == "and"),
    ("tag = été", tag == "été"),
    ("tag = Paper", tag == "Paper"),
    ("tag != paper", tag != "paper"),
    ("tag != paper", Not(tag == "paper")),
    ("not tag = paper", tag != "paper"),
    ("tag in (a, b)", tag.isin(["a", "b"])),
    ('tag IN (a, "b c", 3)', tag.isin(["a", "b c", "3"])),
    ("tag in (a)", tag == "a"),
    ("tag in (a, a)", tag.isin(["a"])),
    ('note ~ "diverged"', note.contains("diverged")),
    ("note ~ diverged", note.contains("diverged")),
    ("note ~'two words'", note.contains("two words")),
    ('note ~ ""', note.contains("")),
    ("note ~ 100%_done", note.contains("100%_done")),
    ("note ~ ~", note.contains("~")),
    ("note ~ and_more", note.contains("and_more")),
    # combined with the rest of the grammar
    ("--doubledqn and tag = paper", And((flag("--doubledqn"), tag == "paper"))),
    ("tag = paper or note ~ nan", Or((tag == "paper", note.contains("nan")))),
    (
        "-lr < 0.01 and not (tag in (draft, broken) or note ~ diverged) and final_mean > 200",
        And((arg("-lr") < 0.01, ~Or((tag.isin(["draft", "broken"]), note.contains("diverged"))),
             score.final_mean > 200)),
    ),
    ('info.comments contains x and tag != x', And((info("comments").contains("x"), tag != "x"))),
    # "~" is an operator only where it stands alone: elsewhere it is a character of a word
    ("-dir = ~", arg("-dir") == "~"),
    ("-dir = ~/data", arg("-dir") == "~/data"),
    ("-name = backup~ and tag = a", And((arg("-name") == "backup~", tag == "a"))),
    ("-es in (~, a)", arg("-es").isin(["~", "a"])),
    # a key that merely starts like the names is an exec-arg key
    ("tags", flag("tags")),
    ("--tag = paper", arg("--tag") == "paper"),
    ("notes", flag("notes")),
]


@pytest.mark.parametrize(("text", "expected"), FORMS)
def test_forms(text: str, expected: Filter) -> None:
    assert_same(parse_filter(text), expected)


ERRORS: list[tuple[str, int, str]] = [
    ("tag", 3, "expected =, != or in after 'tag', found end of expression"),
    ("tag < paper", 4, "expected =, != or in after 'tag', found '<'"),
    ("tag contains p", 4, "expected =, != or in after 'tag', found 'contains'"),
    ("tag ~ paper", 4, "expected =, != or in after 'tag', found '~'"),
    ('tag = "a/b"', 6, "invalid tag 'a/b': a tag must not hold '/'"),
    ("tag = 'a\\\\b'", 6, "invalid tag 'a\\\\b': a tag must not hold '\\\\'"),
    ('tag = ""', 6, "invalid tag '': a tag must not be empty"),
    ('tag = "a\tb"', 6, "a tag must not hold a control character"),
    ("tag in (ok, '/')", 12, "a tag must not hold '/'"),
    ('tag = "' + "x" * 201 + '"', 6, "a tag has at most 200 characters, not 201"),
    ("tag = ", 6, "expected a value after '='"),
    ("note", 4, "expected '~' after 'note', found end of expression"),
    ("note = x", 5, "expected '~' after 'note', found '='"),
    ("note contains x", 5, "expected '~' after 'note', found 'contains'"),
    ("note in (x)", 5, "expected '~' after 'note', found 'in'"),
    ("note ~x", 5, "expected '~' after 'note', found '~x'"),
    ("note ~", 6, "expected a value after '~'"),
    ("comments ~ x", 9, "'~' does not apply to 'comments'"),
    ("info.host ~ x", 10, "'~' does not apply to 'info.host'"),
    ("-lr ~ 3", 4, "'~' does not apply to '-lr'"),
    ("note~ x", 0, "invalid key 'note~'"),
]


@pytest.mark.parametrize(("text", "position", "message"), ERRORS)
def test_errors(text: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_filter(text)
    assert caught.value.position == position
    first = str(caught.value).split("\n")[0]
    assert message in first, first
    assert re.search(r" at position \d+$", first)


def test_python_api() -> None:
    assert isinstance(tag == "paper", TagIn) and (tag == " paper ").tags == ("paper",)
    assert isinstance(note.contains("x"), NoteContains)
    assert repr(tag != "paper") == "not tag == 'paper'"
    assert repr(tag.isin(["a", "b"])) == "tag in ('a', 'b')"
    assert repr(note.contains("Diverged")) == "note ~ 'Diverged'"
    with pytest.raises(QueryError, match="must not hold '/'"):
        tag == "a/b"  # noqa: B015
    with pytest.raises(QueryError, match="must not be empty"):
        tag.isin(["ok", ""])
    assert tag.isin([]).sql(Params()) == "1 = 0"
    # Uncorrelated IN by default; a correlated EXISTS for first-few-runs queries.
    assert "IN (SELECT hermes_tag.run_id" in (tag == "a").sql(Params())
    assert (tag == "a").sql(Params(correlated=True)).startswith("EXISTS (SELECT 1 FROM hermes_tag")
    assert "lower(hermes_note.text) LIKE lower(" in note.contains("a").sql(Params())
    params = Params()
    note.contains("50%_of a/b").sql(params)
    assert params.values == {"p0": "%50/%/_of a//b%"}
    with pytest.raises(TypeError):
        bool(tag == "a")
    assert (tag == "a") & everything is not None


valid_tags = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30
).filter(lambda text: text.strip() and "/" not in text and "\\" not in text)


@given(valid_tags, st.sampled_from(["'", '"']))
def test_any_valid_tag_quoted_parses_to_itself(value: str, mark: str) -> None:
    quoted = mark + value.replace("\\", "\\\\").replace(mark, "\\" + mark) + mark
    assert_same(parse_filter(f"tag = {quoted}"), tag == rundir.check_tag(value))
    assert_same(parse_filter(f"note ~ {quoted}"), note.contains(value))
