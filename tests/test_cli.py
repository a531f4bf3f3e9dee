"""Tests of the command line: ``hermes`` (ls, show, sql, plot, reindex) and ``hermes-reindex``.

The entry points run in-process (``hermes_main([...])`` with capsys) and, for
each console script, as a real subprocess whose stdout is a pipe. Outputs are
parsed for real: JSON with ``json.loads``, CSV with ``csv.reader``, tables by
column offsets.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from legacy import write_run

from pyhermes.cli import format_table, hermes_main, join_dash_values, reindex_main

BIN = Path(sys.executable).parent
SUMMARY_RE = re.compile(
    r"added (\d+), updated (\d+), removed (\d+), unchanged (\d+), problems (\d+)"
)
HERMES_TABLES = (
    "hermes_run",
    "hermes_arg",
    "hermes_info",
    "hermes_problem",
    "hermes_folder",
    "hermes_meta",
)


# --------------------------------------------------------------------------- helpers


def script(name: str) -> str:
    """Return the path of the console script ``name`` of this environment."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"console script {name} is not installed")
    return found


def run_script(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a console script with stdout and stderr as pipes."""
    return subprocess.run(
        [script(name), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        timeout=60,
        check=False,
    )


def call(capsys: pytest.CaptureFixture[str], main: Any, *args: str) -> tuple[int, str, str]:
    """Call an entry point in-process; return (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def summary(text: str) -> dict[str, int]:
    """Parse the ``added N, updated N, ...`` line of a reindex summary."""
    match = SUMMARY_RE.search(text)
    assert match, text
    names = ("added", "updated", "removed", "unchanged", "problems")
    return dict(zip(names, map(int, match.groups()), strict=True))


def table_snapshot(index_file: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every hermes table of a SQLite index, read with sqlite3."""
    connection = sqlite3.connect(index_file)
    try:
        return {
            table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in HERMES_TABLES
        }
    finally:
        connection.close()


def tree_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file and folder below ``root``, ``.hermes`` excluded."""
    state = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".hermes"]
        for name in dirs + files:
            path = os.path.join(folder, name)
            status = os.lstat(path)
            state[os.path.relpath(path, root)] = (status.st_size, status.st_mtime_ns)
    return state


def column_offsets(separator: str) -> list[int]:
    """Start offsets of the columns, from the line of dashes under the header."""
    return [match.start() for match in re.finditer(r"-+", separator)]


def expected_runs(tree: dict, predicate: Any) -> set[str]:
    return {run["identifier"] for run in tree["runs"].values() if predicate(run)}


@pytest.fixture
def tree(quirky: dict) -> dict:
    """The quirky legacy tree, indexed once (its index in ``<root>/.hermes``)."""
    assert reindex_main([str(quirky["root"]), "--quiet"]) == 0
    return quirky


@pytest.fixture
def experiments(tree: dict) -> str:
    """The ``experiments`` folder of the tree: exactly the runs described in ``tree["runs"]``."""
    return str(tree["experiments_dir"])


# --------------------------------------------------------------------------- argv handling


def test_join_dash_values_joins_only_expression_options() -> None:
    argv = ["ls", "--where", "--doubledqn and -lr < 0.01", "--sort", "-final_mean", "--limit", "3"]
    assert join_dash_values(argv) == [
        "ls",
        "--where=--doubledqn and -lr < 0.01",
        "--sort=-final_mean",
        "--limit",
        "3",
    ]
    assert join_dash_values(["plot", "--group-by", "-lr", "-o", "x.png"]) == [
        "plot",
        "--group-by=-lr",
        "-o",
        "x.png",
    ]
    # Values that do not begin with a dash, and anything after --, are left alone.
    assert join_dash_values(["ls", "--where", "finished"]) == ["ls", "--where", "finished"]
    assert join_dash_values(["ls", "--", "--where", "-x"]) == ["ls", "--", "--where", "-x"]


def test_format_table_fits_a_narrow_terminal_and_shortens_cells() -> None:
    rows = [["a" * 60, "short"], ["b", "x" * 10]]
    text = format_table(["long", "other"], rows, width=30)
    lines = text.splitlines()
    assert all(len(line) <= 30 for line in lines)
    assert lines[2].endswith("short")
    first_cell = lines[2][: column_offsets(lines[1])[1]].rstrip()
    assert first_cell.endswith("…") and first_cell.startswith("aaaa")
    wide = format_table(["long"], [["a" * 60]], width=None).splitlines()
    assert len(wide[2]) == 40 and wide[2].endswith("…")


# --------------------------------------------------------------------------- hermes-reindex


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_reindex_counts_added_unchanged_then_added_and_removed(
    quirky: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(quirky["root"], root, symlinks=True)
    code, out, err = call(capsys, reindex_main, str(root))
    assert code == 0, err
    assert summary(out) == {"added": 16, "updated": 0, "removed": 0, "unchanged": 0, "problems": 0}
    assert str(root / ".hermes" / "index.sqlite") in out

    code, out, _ = call(capsys, reindex_main, str(root))
    assert code == 0
    assert summary(out)["unchanged"] == 16 and summary(out)["added"] == 0

    sweep = root / "experiments" / "train_dqn" / "sweep"
    write_run(sweep, start=datetime(2024, 4, 1, 12, 0, 0, 5), scores=[1.0, 2.0])
    victim = sweep / quirky["runs"]["normal"]["identifier"]
    shutil.rmtree(victim)
    code, out, _ = call(capsys, reindex_main, str(root))
    assert code == 0
    assert summary(out) == {"added": 1, "updated": 0, "removed": 1, "unchanged": 15, "problems": 0}
    assert quirky["root"].joinpath(victim.relative_to(root)).is_dir()  # the original is untouched


def test_reindex_reread_updates_every_run(tree: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, reindex_main, str(tree["root"]), "--reread")
    assert code == 0
    assert summary(out) == {"added": 0, "updated": 16, "removed": 0, "unchanged": 0, "problems": 0}


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_reindex_json_and_quiet(quirky: dict, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(quirky["root"])
    code, out, err = call(capsys, reindex_main, root, "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert report["added"] == 16 and report["problems"] == 0 and report["problem_paths"] == {}
    assert {"updated", "removed", "unchanged", "seconds"} <= set(report)
    assert report["root"] == str(Path(root).resolve())
    assert report["index"] == str(Path(root).resolve() / ".hermes" / "index.sqlite")

    code, out, err = call(capsys, reindex_main, root, "--quiet")
    assert (code, out, err) == (0, "", "")
    code, out, err = call(capsys, hermes_main, "reindex", root, "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 16


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_reindex_check_exit_status_and_nothing_written(
    tree: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree["root"]
    index_file = root / ".hermes" / "index.sqlite"
    code, out, _ = call(capsys, reindex_main, str(root), "--check")
    assert code == 0, out
    assert "up to date" in out

    sweep = tree["sweep_dir"]
    added = write_run(sweep, start=datetime(2024, 4, 2, 8, 0, 0, 7), scores=[3.0])
    changed = tree["runs"]["comments_with_colons"]
    with open(changed["path"] / f"{changed['identifier']}.scores", "a") as handle:
        handle.write("4.0\n")
    gone = tree["runs"]["other_a"]["path"]
    shutil.rmtree(gone)
    rel = os.path.relpath
    before_index = table_snapshot(index_file)
    before_tree = tree_snapshot(root)

    code, out, _ = call(capsys, reindex_main, str(root), "--check", "--json")
    assert code == 1
    drift = json.loads(out)
    assert drift["stale"] is True
    assert drift["not_indexed"] == [rel(added, root)]
    assert drift["changed"] == [rel(changed["path"], root)]
    assert drift["gone"] == [rel(gone, root)]
    assert (drift["added"], drift["updated"], drift["removed"]) == (1, 1, 1)

    code, out, _ = call(capsys, reindex_main, str(root), "--check")
    assert code == 1
    assert rel(added, root) in out and "stale" in out
    assert table_snapshot(index_file) == before_index
    assert tree_snapshot(root) == before_tree

    # What --check predicted is what the sync does.
    code, out, _ = call(capsys, reindex_main, str(root))
    assert summary(out) == {"added": 1, "updated": 1, "removed": 1, "unchanged": 14, "problems": 0}
    assert call(capsys, reindex_main, str(root), "--check")[0] == 0


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_reindex_check_lists_warnings_apart_from_unreadable_runs(
    tree: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree["root"]
    odd = write_run(
        tree["sweep_dir"],
        start=datetime(2024, 4, 3, 9, 0, 0, 1),
        info_text=b"commit_hash:\xff\xfe\nno colon\n",
    )
    rel_odd = os.path.relpath(odd, root)
    code, out, _ = call(capsys, reindex_main, str(root), "--check", "--json")
    assert code == 1  # not indexed yet: the index is stale
    drift = json.loads(out)
    assert drift["not_indexed"] == [rel_odd] and drift["problem_paths"] == {}
    assert [note.split(": ")[0][-13:] for note in drift["warning_paths"][rel_odd]] == [
        "hermes.info:1", "hermes.info:2"
    ]

    # Synced, the run is in the index; its warnings are listed, and are no failure.
    code, out, err = call(capsys, reindex_main, str(root))
    assert code == 0 and summary(out)["problems"] == 0 and summary(out)["added"] == 1
    assert "warnings 1" in out and rel_odd in out
    code, out, _ = call(capsys, reindex_main, str(root), "--check")
    assert code == 0, out
    assert "1 run(s) load with warnings" in out and rel_odd in out and "hermes.info:1" in out
    assert "cannot be read" not in out and "stale" not in out
    code, out, _ = call(capsys, reindex_main, str(root), "--check", "--json", "--reread")
    assert code == 0 and list(json.loads(out)["warning_paths"]) == [rel_odd]

    # A run that cannot be read at all is a problem: --check fails, also after a sync.
    unreadable = tree["runs"]["comments_with_colons"]["path"]
    rel_unreadable = os.path.relpath(unreadable, root)
    (unreadable / "hermes.info").unlink()
    (unreadable / "hermes.info").mkdir()
    code, out, _ = call(capsys, reindex_main, str(root), "--check", "--json")
    assert code == 1
    drift = json.loads(out)
    assert list(drift["problem_paths"]) == [rel_unreadable]
    assert list(drift["warning_paths"]) == [rel_odd]
    code, out, err = call(capsys, reindex_main, str(root))
    assert code == 0 and summary(out)["problems"] == 1 and rel_unreadable in out
    code, out, _ = call(capsys, reindex_main, str(root), "--check")
    assert code == 1
    assert "cannot be read" in out and rel_unreadable in out and "stale" not in out


def test_reindex_check_without_an_index_creates_nothing(
    quirky: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    root = quirky["root"]
    before = tree_snapshot(root)
    code, out, _ = call(capsys, reindex_main, str(root), "--check", "--json")
    assert code == 1
    assert len(json.loads(out)["not_indexed"]) == 16
    assert not (root / ".hermes").exists()
    assert tree_snapshot(root) == before


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_reindex_rebuild_copies_a_new_index_in_place_with_the_same_rows(
    tree: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree["root"]
    index_file = root / ".hermes" / "index.sqlite"
    query = (
        "SELECT path, identifier, commit_hash, start_time, end_time, finished, comments, "
        "score_count, score_final_mean FROM hermes_run ORDER BY path"
    )

    def rows() -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(index_file)
        try:
            return connection.execute(query).fetchall()
        finally:
            connection.close()

    before = rows()
    before_tables = table_snapshot(index_file)
    inode = index_file.stat().st_ino
    code, out, err = call(capsys, reindex_main, str(root), "--rebuild")
    assert code == 0, err
    assert summary(out)["added"] == 16 and "rebuilt" in out
    assert index_file.stat().st_ino == inode  # copied over in place: other connections stay valid
    assert rows() == before and len(before) == 16
    after_tables = table_snapshot(index_file)

    def meta(tables: dict[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
        return [row for row in tables["hermes_meta"] if row[0] != "change_token"]

    assert meta(after_tables) == meta(before_tables)  # same root (if stored) and generation
    for table in ("hermes_arg", "hermes_info", "hermes_folder"):
        assert len(after_tables[table]) == len(before_tables[table])
    assert not [p for p in index_file.parent.iterdir() if ".rebuild-" in p.name]
    code, out, _ = call(capsys, hermes_main, "ls", str(root), "--sync=none", "--format=json")
    assert code == 0 and len(json.loads(out)) == 16

    inode = index_file.stat().st_ino
    assert call(capsys, hermes_main, "reindex", str(root), "--rebuild", "--quiet")[0] == 0
    assert index_file.stat().st_ino == inode and rows() == before


def test_reindex_errors_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(capsys, reindex_main, str(tmp_path / "missing"))
    assert code == 3 and out == ""
    assert err.startswith("hermes-reindex: error: no such directory") and len(err.splitlines()) == 1
    code, _, err = call(capsys, reindex_main, str(tmp_path), "--check", "--rebuild")
    assert code == 2 and "not allowed" in err
    code, _, err = call(capsys, reindex_main, "--bogus")
    assert code == 2


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_newer_index_is_a_runtime_error(tree: dict, capsys: pytest.CaptureFixture[str]) -> None:
    from pyhermes.index.store.engine import dispose_engines

    dispose_engines()
    connection = sqlite3.connect(tree["root"] / ".hermes" / "index.sqlite")
    with connection:
        connection.execute("UPDATE hermes_meta SET value = '99' WHERE key = 'schema_generation'")
        connection.execute("UPDATE alembic_version SET version_num = '0099'")
    connection.close()
    code, _, err = call(capsys, reindex_main, str(tree["root"]))
    assert code == 3 and "newer pyhermes" in err and "Traceback" not in err
    code, _, err = call(capsys, hermes_main, "ls", str(tree["root"]))
    assert code == 3 and err.startswith("hermes: error:")


def test_hermes_index_environment_variable_is_honoured(
    quirky: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    elsewhere = tmp_path / "elsewhere.sqlite"
    monkeypatch.setenv("HERMES_INDEX", str(elsewhere))
    code, out, _ = call(capsys, reindex_main, str(quirky["root"]), "--json")
    assert code == 0 and json.loads(out)["index"] == str(elsewhere)
    assert elsewhere.is_file() and not (quirky["root"] / ".hermes").exists()
    code, out, _ = call(
        capsys,
        hermes_main,
        "sql",
        str(quirky["root"]),
        "SELECT COUNT(*) AS n FROM runs",
        "--format=json",
    )
    assert code == 0 and json.loads(out) == [{"n": 16}]
    explicit = tmp_path / "explicit.sqlite"
    code, out, _ = call(
        capsys, hermes_main, "ls", str(quirky["root"]), "--index", str(explicit), "--format=csv"
    )
    assert code == 0 and explicit.is_file() and len(list(csv.reader(io.StringIO(out)))) == 17


def test_reindex_subprocess_with_pipes_has_no_progress_bar(quirky: dict) -> None:
    result = run_script("hermes-reindex", str(quirky["root"]))
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)["added"] == 16
    assert result.stderr == ""
    result = run_script("hermes-reindex", str(quirky["root"]), "--check", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["stale"] is False


def test_reindex_progress_bar_only_on_a_terminal_and_only_with_tqdm(
    quirky: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyhermes._optional
    import pyhermes.cli.reindex
    from pyhermes.errors import MissingDependencyError

    root = str(quirky["root"])
    monkeypatch.setattr(pyhermes.cli.reindex, "isatty", lambda stream: True)
    code, out, err = call(capsys, reindex_main, root)
    assert code == 0 and summary(out)["added"] == 16
    assert "reading runs" in err

    real_require = pyhermes._optional.require

    def without_tqdm(module: str) -> Any:
        if module == "tqdm":
            raise MissingDependencyError("tqdm is needed for this and is not installed")
        return real_require(module)

    monkeypatch.setattr(pyhermes._optional, "require", without_tqdm)
    code, out, err = call(capsys, reindex_main, root, "--reread")
    assert code == 0 and summary(out)["updated"] == 16
    assert err == ""


def test_reindex_rebuild_of_a_database_url(
    quirky: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    # A URL index (here in-memory SQLite) is rebuilt by dropping and recreating its tables.
    code, out, err = call(
        capsys, reindex_main, str(quirky["root"]), "--index", "sqlite://", "--rebuild", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["added"] == 16 and report["rebuilt"] is True and report["index"] == "sqlite://"
    assert not (quirky["root"] / ".hermes").exists()


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_closed_output_pipe_ends_quietly(tree: dict) -> None:
    query = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 200000) SELECT x FROM c"
    process = subprocess.Popen(
        [script("hermes"), "sql", str(tree["root"]), query, "--sync=none", "--format=csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b"x\n"
    process.stdout.close()
    error = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) in (0, 141)
    assert "Traceback" not in error and "Exception ignored" not in error


# --------------------------------------------------------------------------- hermes ls


def test_ls_where_sort_limit_in_the_documented_forms(
    tree: dict, experiments: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = expected_runs(
        tree, lambda r: "--doubledqn" in r["args"] and r["args"].get("-lr", 1) < 0.01
    )
    assert wanted
    code, out, err = call(
        capsys,
        hermes_main,
        "ls",
        experiments,
        "--where=--doubledqn and -lr < 0.01",
        "--sort=-final_mean",
        "--format=json",
    )
    assert code == 0, err
    rows = json.loads(out)
    assert {row["identifier"] for row in rows} == wanted
    means = [row["final_mean"] for row in rows]
    assert means == sorted(means, reverse=True)
    assert all(row["--doubledqn"] is True for row in rows)

    # The space-separated forms give the same answer.
    code, spaced, _ = call(
        capsys,
        hermes_main,
        "ls",
        experiments,
        "--where",
        "--doubledqn and -lr < 0.01",
        "--sort",
        "-final_mean",
        "--format",
        "json",
    )
    assert code == 0 and json.loads(spaced) == rows

    code, out, _ = call(
        capsys,
        hermes_main,
        "ls",
        experiments,
        "--sort=-final_mean",
        "--limit",
        "3",
        "--format=json",
    )
    top = json.loads(out)
    assert len(top) == 3
    every = [run for run in tree["runs"].values() if run["scores"]]
    assert top[0]["identifier"] == tree["runs"]["baseline"]["identifier"]
    assert len(every) > 3

    code, out, _ = call(
        capsys, hermes_main, "ls", experiments, "--where=not --doubledqn", "--format=json"
    )
    assert {row["identifier"] for row in json.loads(out)} == expected_runs(
        tree, lambda r: "--doubledqn" not in r["args"]
    )


def test_ls_columns_and_csv(
    tree: dict, experiments: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call(
        capsys,
        hermes_main,
        "ls",
        experiments,
        "--columns=identifier,-lr,args,final_mean,info.comments,train",
        "--sort=identifier",
        "--format=csv",
    )
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["identifier", "-lr", "args", "final_mean", "info.comments", "train"]
    by_id = {row[0]: row for row in rows[1:]}
    assert set(by_id) == expected_runs(tree, lambda r: True)
    normal = tree["runs"]["normal"]
    row = by_id[normal["identifier"]]
    assert float(row[1]) == 0.001
    assert row[2] == " ".join(normal["arg_lines"])
    assert float(row[3]) == pytest.approx(sum(normal["scores"]) / len(normal["scores"]))
    assert row[4] == "baseline" and row[5] == "true"
    colons = by_id[tree["runs"]["comments_with_colons"]["identifier"]]
    assert colons[4] == "sweep: lr, see notes"  # full value, quoted by csv
    assert by_id[tree["runs"]["baseline"]["identifier"]][5] == ""  # no train positional


def test_ls_default_columns_and_aligned_table(
    tree: dict, experiments: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = call(capsys, hermes_main, "ls", experiments)
    assert code == 0
    lines = out.splitlines()
    header = lines[0].split()
    from pyhermes.index.query.table import DEFAULT_LEADING, DEFAULT_TRAILING

    # The runs page's default columns: the exec-arg keys of the runs between the run fields and the summaries.
    assert header[: len(DEFAULT_LEADING)] == list(DEFAULT_LEADING)
    assert header[-len(DEFAULT_TRAILING) :] == list(DEFAULT_TRAILING)
    assert {"-lr", "--doubledqn", "train"} <= set(header[len(DEFAULT_LEADING) : -len(DEFAULT_TRAILING)])
    offsets = column_offsets(lines[1])
    assert len(offsets) == len(header)
    assert len(lines) == 2 + len(tree["runs"])
    for line in [lines[0], *lines[2:]]:
        for offset in offsets[1:]:
            if offset < len(line):
                assert line[offset - 2 : offset] == "  ", (line, offset)
    first_cells = {line[: offsets[1]].strip() for line in lines[2:]}
    assert first_cells == expected_runs(tree, lambda r: True)

    code, out, _ = call(capsys, hermes_main, "ls", experiments, "--columns=identifier,path")
    lines = out.splitlines()
    offsets = column_offsets(lines[1])
    paths = [line[offsets[1] :] for line in lines[2:]]
    assert all(len(path) == 40 and path.endswith("…") for path in paths)


def test_ls_table_through_a_pipe(tree: dict, experiments: str) -> None:
    result = run_script(
        "hermes", "ls", experiments, "--where=--doubledqn and -lr < 0.01", "--sort=-final_mean"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    offsets = column_offsets(lines[1])
    identifiers = [line[: offsets[1]].strip() for line in lines[2:]]
    assert set(identifiers) == expected_runs(
        tree, lambda r: "--doubledqn" in r["args"] and r["args"].get("-lr", 1) < 0.01
    )
    assert "\x1b[" not in result.stdout
    result = run_script(
        "hermes", "ls", experiments, "--format", "csv", "--columns", "identifier,-lr"
    )
    assert result.returncode == 0
    assert list(csv.reader(io.StringIO(result.stdout)))[0] == ["identifier", "-lr"]


def test_ls_errors(
    tree: dict, experiments: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call(capsys, hermes_main, "ls", experiments, "--where=--doubledqn and -lr <")
    assert code == 1 and out == ""
    assert err.startswith("hermes: error: ") and "position" in err
    assert err.splitlines()[-1].strip() == "^"
    assert "Traceback" not in err

    code, _, err = call(capsys, hermes_main, "ls", experiments, "--columns=identifier,foo")
    assert code == 1 and err.startswith("hermes: error: unknown column 'foo'")
    code, _, err = call(capsys, hermes_main, "ls", experiments, "--sort=nonsense words")
    assert code == 1 and "sort key" in err
    code, _, err = call(capsys, hermes_main, "ls", str(tmp_path / "missing"))
    assert code == 1 and err == f"hermes: error: no such directory: {tmp_path / 'missing'}\n"
    code, _, err = call(capsys, hermes_main, "ls", experiments, "--limit", "-1")
    assert code == 2
    code, _, err = call(capsys, hermes_main, "ls", experiments, "--format", "xml")
    assert code == 2


def test_bad_expression_in_a_subprocess_has_no_traceback(tree: dict, experiments: str) -> None:
    result = run_script("hermes", "ls", experiments, "--where=-lr < 0.01 and and")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("hermes: error:")
    assert "-lr < 0.01 and and" in lines[1] and lines[2].strip() == "^"


def test_sync_problems_are_one_line_warnings(
    tree: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = write_run(
        tree["sweep_dir"], start=datetime(2024, 4, 3, 9, 0, 0, 2), info_text=b"commit_hash:\xff\n"
    )
    code, out, err = call(capsys, hermes_main, "ls", str(tree["root"]), "--format=json")
    assert code == 0 and len(json.loads(out)) == 17  # the run with an odd byte is listed
    assert odd.name in out
    warnings_shown = [line for line in err.splitlines() if line.startswith("hermes: warning:")]
    assert len(warnings_shown) == 1 and "hermes-reindex --check" in warnings_shown[0]
    assert "read with warnings" in warnings_shown[0]
    assert "Traceback" not in err and "Warning:" not in err

    (odd / "hermes.info").unlink()
    (odd / "hermes.info").mkdir()
    code, out, err = call(capsys, hermes_main, "ls", str(tree["root"]), "--format=json", "--sync=full")
    assert code == 0 and len(json.loads(out)) == 16
    warnings_shown = [line for line in err.splitlines() if line.startswith("hermes: warning:")]
    assert len(warnings_shown) == 1 and "could not be read" in warnings_shown[0]


# --------------------------------------------------------------------------- hermes show


def test_show_by_identifier_prefix(tree: dict, capsys: pytest.CaptureFixture[str]) -> None:
    crashed = tree["runs"]["crashed"]
    root = str(tree["root"])
    code, out, err = call(
        capsys, hermes_main, "show", crashed["identifier"][:20], "--root", root, "--format=json"
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["identifier"] == crashed["identifier"]
    assert shown["finished"] is False and shown["end_time"] is None
    assert shown["args"] == crashed["arg_lines"]
    assert shown["info"]["commit_hash"] == crashed["commit_hash"]
    files = {entry["name"]: entry["size"] for entry in shown["files"]}
    assert files["hermes.info"] == (crashed["path"] / "hermes.info").stat().st_size
    stderr_lines = (crashed["path"] / "stderr.log").read_text().splitlines()
    assert shown["stderr_tail"] == stderr_lines[-10:] and stderr_lines

    code, out, _ = call(capsys, hermes_main, "show", crashed["identifier"][:20], "--root", root)
    assert code == 0
    for section in (
        "info (hermes.info):",
        "args (exec_arguments):",
        "scores:",
        "files:",
        "stderr.log (last 10 lines):",
    ):
        assert section in out
    assert stderr_lines[-1] in out and "hermes.info" in out

    code, out, _ = call(
        capsys, hermes_main, "show", str(tree["runs"]["normal"]["path"]), "--format=json"
    )
    assert code == 0 and json.loads(out)["scores"]["count"] == 4


def test_show_errors(tree: dict, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tree["root"])
    code, out, err = call(capsys, hermes_main, "show", "2024_03", "--root", root)
    assert code == 1 and out == ""
    assert err.startswith("hermes: error:") and "more than one run" in err
    assert len(err.splitlines()) == 1
    code, _, err = call(capsys, hermes_main, "show", "1999_", "--root", root)
    assert code == 1 and "no run matches" in err


# --------------------------------------------------------------------------- hermes sql


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_sql_select_and_refused_write(tree: dict, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tree["root"])
    query = "SELECT identifier, final_mean FROM runs WHERE final_mean IS NOT NULL ORDER BY final_mean DESC"
    code, out, err = call(capsys, hermes_main, "sql", root, query, "--format=json")
    assert code == 0, err
    rows = json.loads(out)
    assert rows[0]["identifier"] == tree["runs"]["baseline"]["identifier"]
    assert [row["final_mean"] for row in rows] == sorted(
        (row["final_mean"] for row in rows), reverse=True
    )

    code, out, _ = call(
        capsys,
        hermes_main,
        "sql",
        root,
        "SELECT key, COUNT(*) AS n FROM run_args GROUP BY key ORDER BY key",
        "--format=csv",
    )
    parsed = list(csv.reader(io.StringIO(out)))
    assert (
        parsed[0] == ["key", "n"]
        and ["-lr", str(sum(1 for r in tree["runs"].values() if "-lr" in r["args"]) + 1)] in parsed
    )

    code, out, err = call(capsys, hermes_main, "sql", root, "DELETE FROM hermes_run")
    assert code == 1 and out == "" and err.startswith("hermes: error: refused")
    connection = sqlite3.connect(tree["root"] / ".hermes" / "index.sqlite")
    assert connection.execute("SELECT COUNT(*) FROM hermes_run").fetchone()[0] == 16
    connection.close()

    code, _, err = call(capsys, hermes_main, "sql", root, "SELECT nope FROM runs")
    assert code == 1 and err.startswith("hermes: error: SQL error")


def test_sql_in_a_subprocess(tree: dict) -> None:
    result = run_script(
        "hermes",
        "sql",
        "SELECT identifier FROM runs ORDER BY identifier",
        "--sync=none",
        cwd=tree["root"],
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "identifier" and len(lines) == 2 + 16
    result = run_script("hermes", "sql", str(tree["root"]), "DROP TABLE hermes_run")
    assert result.returncode == 1 and "Traceback" not in result.stderr


# --------------------------------------------------------------------------- hermes plot


def test_plot_writes_a_png(tree: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "curves.png"
    code, out, err = call(
        capsys,
        hermes_main,
        "plot",
        str(tree["experiments_dir"]),
        "--where=train and -lr <= 0.005",
        "--group-by=-lr",
        "--window",
        "2",
        "--band",
        "ci95",
        "-o",
        str(output),
    )
    assert code == 0, err
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(output) in out

    code, _, err = call(
        capsys,
        hermes_main,
        "plot",
        str(tree["root"]),
        "--where=-lr > 100",
        "-o",
        str(tmp_path / "none.png"),
    )
    assert code == 1 and "no run" in err and not (tmp_path / "none.png").exists()
    code, _, err = call(
        capsys, hermes_main, "plot", str(tree["root"]), "--window", "0", "-o", str(output)
    )
    assert code == 2


def test_plot_in_a_subprocess(tree: dict, tmp_path: Path) -> None:
    output = tmp_path / "lr.png"
    result = run_script("hermes", "plot", str(tree["root"]), "--group-by", "-lr", "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", ["ls", "show", "sql", "plot", "reindex"])
def test_subcommand_help_shows_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, hermes_main, command, "--help")
    assert code == 0
    assert "examples:" in out and f"hermes {command}" in out.split("examples:")[1]
    assert "exit status:" in out


def test_top_level_help_and_missing_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, hermes_main, "--help")
    assert code == 0 and "examples:" in out
    code, out, _ = call(capsys, reindex_main, "--help")
    assert code == 0 and "hermes-reindex --check" in out and "exit status:" in out
    code, _, err = call(capsys, hermes_main)
    assert code == 2 and "COMMAND" in err


def test_console_scripts_help() -> None:
    for name in ("hermes", "hermes-reindex"):
        result = run_script(name, "--help")
        assert result.returncode == 0 and "examples:" in result.stdout
