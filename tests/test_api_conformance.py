"""The documented hermes API, signature by signature, and the documentation's own usage lines.

The table below is written from ``/work/shared/hermes-api.md`` (the restored
signatures of the original hermes "Storage and Retrieval" page), not from the
code: one entry per row of that document. Every documented parameter must be
there with its name, order, kind and default; what pyhermes adds must come
after the documented parameters and be keyword-only.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from legacy import write_run

import pyhermes
from pyhermes import plot as hermes_plot
from pyhermes import storage
from pyhermes.result import Result

NO_DEFAULT = inspect.Parameter.empty
MUTABLE_EMPTY_LIST = object()
"""Marks a documented ``[]`` default: a safe equivalent (an empty tuple) behaves the same."""

#: (owner, attribute, binding, documented parameters as (name, default)) where
#: binding is "function", "method", "classmethod", "staticmethod" or "constructor".
#: ``self``/``cls`` are not listed.
DOCUMENTED: list[tuple[Any, str, str, list[tuple[str, Any]]]] = [
    # ---- pyhermes.storage.Experiment
    (storage.Experiment, "__init__", "constructor",
     [("identifier", NO_DEFAULT), ("path_to_experiment", NO_DEFAULT),
      ("commit_hash", NO_DEFAULT), ("start_time", NO_DEFAULT)]),
    (storage.Experiment, "copy_file", "method",
     [("path_to_file", NO_DEFAULT), ("new_file_name", None)]),
    (storage.Experiment, "move_file", "method",
     [("path_to_file", NO_DEFAULT), ("new_file_name", None)]),
    (storage.Experiment, "file", "method", [("file", NO_DEFAULT)]),
    (storage.Experiment, "get_identifier", "method", []),
    (storage.Experiment, "is_experiment", "staticmethod", [("path", NO_DEFAULT)]),
    (storage.Experiment, "list_pth_files", "method", []),
    (storage.Experiment, "load", "classmethod", [("path_to_experiment", NO_DEFAULT)]),
    (storage.Experiment, "load_all", "staticmethod", [("path", NO_DEFAULT)]),
    (storage.Experiment, "load_state_dict", "method", [("pth_name", NO_DEFAULT), ("net", None)]),
    (storage.Experiment, "open_log_files", "method", [("mode", "r+")]),
    (storage.Experiment, "open_stderr_file", "method", [("mode", "r+")]),
    (storage.Experiment, "read_info", "staticmethod", [("path_to_experiment", NO_DEFAULT)]),
    (storage.Experiment, "scores", "method", []),
    # ---- pyhermes.storage.ExperimentList
    (storage.ExperimentList, "__init__", "constructor", [("exp_iterable", NO_DEFAULT)]),
    (storage.ExperimentList, "filter_by_exec_args", "method", [("*args", NO_DEFAULT)]),
    (storage.ExperimentList, "latest", "method", []),
    # ---- pyhermes.storage.ExperimentFrame: built from an iterable of experiments
    (storage.ExperimentFrame, "__new__", "constructor", [("experiments", NO_DEFAULT)]),
    # ---- pyhermes.result.Result
    (Result, "__init__", "constructor",
     [("name", NO_DEFAULT), ("path", None), ("dictionary", None)]),
    (Result, "new", "classmethod", [("name", NO_DEFAULT)]),
    (Result, "from_namespace", "classmethod", [("name", NO_DEFAULT), ("namespace", NO_DEFAULT)]),
    (Result, "load", "classmethod", [("path", NO_DEFAULT)]),
    (Result, "save", "method", [("directory", None)]),
    (Result, "store_scalar", "method", [("value", NO_DEFAULT), ("key", NO_DEFAULT)]),
    (Result, "store_array", "method", [("value", NO_DEFAULT), ("key", NO_DEFAULT)]),
    (Result, "plot_scalar", "method",
     [("key", NO_DEFAULT), ("smoothing", 50), ("show", True), ("ax", None)]),
    # ---- pyhermes.plot
    (hermes_plot, "plot_training_progress", "function",
     [("scores", NO_DEFAULT), ("eps_start", None), ("eps_end", None), ("eps_decay", None),
      ("epsilons", None), ("window_length", 250), ("figsize", (12, 12)), ("fontsize", 18),
      ("path", None), ("scores_color", "c"), ("mean_color", "r"), ("score_range", None),
      ("epsilon_range", None), ("axis_gap", 0.02), ("mark_best", False), ("legend", True),
      ("ax", None)]),
    (hermes_plot, "plot_training_progress_from_experiment", "function",
     [("exp", NO_DEFAULT), ("eps_start_key", "-es"), ("eps_end_key", "-ee"),
      ("eps_decay_key", "-ed"), ("window_length", 250), ("figsize", (12, 12)), ("fontsize", 18),
      ("path", None), ("scores_color", "c"), ("mean_color", "r"), ("score_range", None),
      ("epsilon_range", None), ("axis_gap", 0.02), ("mark_best", True), ("legend", True)]),
    (hermes_plot, "plot_training_progress_from_file", "function",
     [("file", NO_DEFAULT), ("eps_start", 1), ("eps_end", 0.001), ("eps_decay", 0.999),
      ("epsilons", MUTABLE_EMPTY_LIST), ("window_length", 250), ("figsize", (12, 12)),
      ("fontsize", 18), ("path", None), ("scores_color", "c"), ("mean_color", "r"),
      ("score_range", None), ("epsilon_range", None), ("axis_gap", 0.02), ("mark_best", True),
      ("legend", True)]),
    (hermes_plot, "smoothen", "function", [("arr", NO_DEFAULT), ("window_size", 100)]),
]

#: Documented properties of Experiment (``name: type``) in the same document.
DOCUMENTED_PROPERTIES = ("exec_args", "exec_args_dict", "info_dict", "result", "scores_file")


def _id(entry: tuple[Any, str, str, list[tuple[str, Any]]]) -> str:
    owner, name, _, _ = entry
    return f"{getattr(owner, '__name__', owner)}.{name}"


def _callable(owner: Any, name: str, binding: str) -> Callable[..., Any]:
    """The object whose signature is checked, after checking how it is bound."""
    raw = inspect.getattr_static(owner, name)
    if binding == "staticmethod":
        assert isinstance(raw, staticmethod), f"{name} must be a staticmethod"
    elif binding == "classmethod":
        assert isinstance(raw, classmethod), f"{name} must be a classmethod"
    elif binding == "method":
        assert inspect.isfunction(raw), f"{name} must be a plain method"
    elif binding == "constructor":
        assert isinstance(owner, type) and name in ("__init__", "__new__")
    return getattr(owner, name)


def _same_default(actual: Any, documented: Any) -> bool:
    if documented is MUTABLE_EMPTY_LIST:
        return isinstance(actual, (tuple, frozenset)) and len(actual) == 0
    return type(actual) is type(documented) and actual == documented


@pytest.mark.parametrize("entry", DOCUMENTED, ids=_id)
def test_documented_signature(entry: tuple[Any, str, str, list[tuple[str, Any]]]) -> None:
    owner, name, binding, documented = entry
    function = _callable(owner, name, binding)
    parameters = list(inspect.signature(function).parameters.values())
    if binding in ("method", "constructor") or name == "__new__":
        assert parameters[0].name in ("self", "cls")
        parameters = parameters[1:]  # a classmethod's cls is bound already
    assert len(parameters) >= len(documented), [p.name for p in parameters]
    for parameter, (doc_name, doc_default) in zip(parameters, documented, strict=False):
        if doc_name.startswith("*"):
            assert parameter.name == doc_name[1:]
            assert parameter.kind is inspect.Parameter.VAR_POSITIONAL
            continue
        assert parameter.name == doc_name, f"{name}: {parameter.name} where {doc_name} is documented"
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (
            f"{name}({doc_name}) must be positional-or-keyword, is {parameter.kind}"
        )
        if doc_default is NO_DEFAULT:
            assert parameter.default is NO_DEFAULT, f"{name}({doc_name}) has a default"
        else:
            assert _same_default(parameter.default, doc_default), (
                f"{name}({doc_name}={parameter.default!r}), documented {doc_default!r}"
            )
    for extra in parameters[len(documented):]:
        assert extra.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD), (
            f"{name}: the added parameter {extra.name} must be keyword-only"
        )


@pytest.mark.parametrize("name", DOCUMENTED_PROPERTIES)
def test_documented_properties(name: str) -> None:
    assert isinstance(inspect.getattr_static(storage.Experiment, name), property)


def test_the_table_covers_every_documented_name() -> None:
    """Every name of hermes-api.md is in the table above (a guard against dropping a row)."""
    covered = {(getattr(owner, "__name__", ""), name) for owner, name, _, _ in DOCUMENTED}
    expected_experiment = {
        "__init__", "copy_file", "move_file", "file", "get_identifier", "is_experiment",
        "list_pth_files", "load", "load_all", "load_state_dict", "open_log_files",
        "open_stderr_file", "read_info", "scores",
    }
    assert {name for owner, name in covered if owner == "Experiment"} == expected_experiment
    assert {name for owner, name in covered if owner == "ExperimentList"} == {
        "__init__", "filter_by_exec_args", "latest"}
    assert {name for owner, name in covered if owner == "Result"} == {
        "__init__", "new", "from_namespace", "load", "save", "store_scalar", "store_array",
        "plot_scalar"}
    assert {name for owner, name in covered if owner == "pyhermes.plot"} == {
        "plot_training_progress", "plot_training_progress_from_experiment",
        "plot_training_progress_from_file", "smoothen"}
    assert issubclass(storage.ExperimentList, list) and issubclass(Result, dict)
    for name in ("Experiment", "ExperimentList", "ExperimentFrame"):
        assert getattr(pyhermes, name) is getattr(storage, name)  # also importable from pyhermes


# --------------------------------------------------------------------------- usage lines


def test_result_usage_from_the_documentation(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    r = Result.new("training")
    r.store_scalar(0.5, "loss")
    r.store_scalar([0.25, 0.125], "loss")
    r.store_array(np.array([1.0, 2.0]), "q_values")
    r.store_array([3.0, 4.0], "q_values")
    r["tags"] = ["dqn"]
    written = r.save(tmp_path)
    assert written == tmp_path / "training.result"
    loaded = Result.load(written)
    np.testing.assert_array_equal(loaded["loss"], [0.5, 0.25, 0.125])
    np.testing.assert_array_equal(loaded["q_values"], [[1.0, 2.0], [3.0, 4.0]])
    assert loaded["tags"] == ["dqn"]
    with pytest.raises(ValueError):
        Result.new("no_path").save()

    args = Result.from_namespace("args", argparse.Namespace(lr=0.01))
    assert isinstance(args, Result) and args == {"lr": 0.01}
    assert Result("eval", None, {"x": [1.0]}) == {"x": [1.0]}


def test_log_files_usage_from_the_documentation(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, start=datetime(2024, 1, 1), stdout="hello\n", stderr="oops\n")
    exp = storage.Experiment.load(run_dir)
    with exp.open_log_files(mode="r") as (f_stdout, f_stderr):
        assert f_stdout.read() == "hello\n" and f_stderr.read() == "oops\n"
    with exp.open_log_files() as (f_stdout, f_stderr):  # default 'r+': read and write
        assert f_stdout.read() == "hello\n"
        f_stdout.write("more\n")
    assert (run_dir / "stdout.log").read_text() == "hello\nmore\n"
    with exp.open_stderr_file() as f_stderr:
        assert f_stderr.read() == "oops\n"
    assert exp.file("stdout.log") == run_dir / "stdout.log"
    assert exp.file(file="stderr.log") == run_dir / "stderr.log"


def test_log_files_with_odd_bytes_read_by_the_fallback(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, start=datetime(2024, 1, 1))
    (run_dir / "stdout.log").write_bytes("ok é\n".encode() + b"caf\xe9\n")
    with storage.Experiment.load(run_dir).open_log_files(mode="r") as (f_stdout, _):
        assert f_stdout.read() == "ok é\ncafé\n"


def test_filter_usage_from_the_documentation(tmp_path: Path) -> None:
    path = tmp_path / "experiments" / "train" / "sweep"
    ddqn = write_run(path, start=datetime(2024, 1, 1), exec_args=["train", "--doubledqn"])
    write_run(path, start=datetime(2024, 1, 2), exec_args=["train", "-lr 0.001"])
    for index in (None, False):
        experiments = storage.Experiment.load_all(path, index=index)
        ddqn_runs = experiments.filter_by_exec_args("--doubledqn")
        assert [run.path_to_experiment for run in ddqn_runs] == [ddqn]
        assert experiments.latest().start_time == datetime(2024, 1, 2)
        assert isinstance(ddqn_runs, storage.ExperimentList)


def test_plot_from_file_usage_draws_the_documented_epsilon(plt: Any, tmp_path: Path) -> None:
    scores = tmp_path / "run.scores"
    scores.write_text("".join(f"{value}\n" for value in range(300)))
    fig = hermes_plot.plot_training_progress_from_file(scores)
    epsilon_axes = fig.axes[1]
    expected = np.maximum(0.999 ** np.arange(300), 0.001)
    np.testing.assert_allclose(epsilon_axes.lines[0].get_ydata(), expected)
