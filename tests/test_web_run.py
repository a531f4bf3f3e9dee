"""The Run page of hermes serve, in process: the status badge, the end of stderr of a crashed
run, the log viewer's windows of a large log, files as downloads, the window in the URL and a
run without scores; and the rundir reader of log windows they rest on.

Each run is written on disk by the test (``tests/legacy.py``) in the state it checks; the
expected answers come from the files written, not from the code under test.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from legacy import write_run

from pyhermes import Experiment, rundir
from pyhermes.errors import RunFormatError

flask = pytest.importorskip("flask")

from pyhermes.web import create_app  # noqa: E402

SWEEP = Path("experiments") / "train_dqn" / "debug"
BIG_LOG_LINES = 100_000
OOM = (
    "Traceback (most recent call last):\n"
    '  File "train_dqn.py", line 87, in <module>\n'
    "    loss.backward()\n"
    '  File "torch/_tensor.py", line 522, in backward\n'
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB "
    "(GPU 0; 7.79 GiB total capacity)\n"
)


def _age(run_dir: Path, seconds: float) -> None:
    """Make every file of ``run_dir`` look last written ``seconds`` ago."""
    moment = time.time() - seconds
    for entry in run_dir.iterdir():
        if entry.is_file() and not entry.is_symlink():
            os.utime(entry, (moment, moment))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("web_run") / "runs"
    sweep = root / SWEEP
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("not for the web\n")
    made = {
        "finished": write_run(
            sweep, start=datetime(2024, 5, 1, 10), scores=[1.0, 2.0, 3.0],
            stdout="".join(f"episode {i} return {i}.5\n" for i in range(BIG_LOG_LINES)),
            extra_files={
                "model.pth": bytes(range(12)) * 100_000,
                'na\u00efve "report";.txt': "caf\u00e9\n",
                "train.log": "a\nb\nc",
                "plots/curve.png": b"\x89PNG",
                "page.html": "<script>alert(1)</script>",
            },
        ),
        "unfinished": write_run(sweep, start=datetime(2024, 5, 2, 10), scores=[1.0], finished=False),
        "stale": write_run(sweep, start=datetime(2024, 5, 3, 10), scores=[1.0, 2.0], finished=False,
                           stderr="epoch 1\nepoch 2\n"),
        "oom": write_run(sweep, start=datetime(2024, 5, 4, 10), scores=[4.0, 5.0], finished=False,
                         stdout="episode 0 return 4.0\n", stderr="warming up\n" + OOM),
        "no_scores": write_run(sweep, start=datetime(2024, 5, 5, 10)),
    }
    finished = made["finished"]
    (finished / "escape.txt").symlink_to(outside)
    (finished / "beside.log").symlink_to(finished / "train.log")
    os.mkfifo(finished / "pipe")
    _age(made["stale"], 3 * 3600)
    _age(made["oom"], 3 * 3600)
    return made


@pytest.fixture(scope="module")
def client(runs: dict[str, Path]):
    root = runs["finished"].parents[3]
    app = create_app(root)
    app.extensions["hermes"].wait()
    yield app.test_client()
    from pyhermes.index.store.engine import dispose_engines

    dispose_engines()


def _path(run_dir: Path) -> str:
    return quote((SWEEP / run_dir.name).as_posix())


def _page(client, run_dir: Path, query: str = "") -> str:
    response = client.get(f"/run/{_path(run_dir)}{query}")
    assert response.status_code == 200, response.data[:500]
    return response.get_data(as_text=True)


def _json(client, url: str, status: int = 200):
    response = client.get(url)
    assert response.status_code == status, response.data[:500]
    assert response.mimetype == "application/json"
    return json.loads(response.data)


# --------------------------------------------------------------------------- status badge


@pytest.mark.parametrize(
    ("name", "status"),
    [("finished", "finished"), ("unfinished", "unfinished"), ("stale", "crashed"), ("oom", "crashed")],
)
def test_the_badge_says_finished_unfinished_or_crashed(client, runs, name, status):
    text = _page(client, runs[name])
    badge = re.search(r'<span class="badge badge-(\w+)" id="run-status" data-status="(\w+)"', text)
    assert badge is not None and badge.groups() == (status, status)
    assert text.index('id="run-status"') < text.index('id="curation-card"')  # by the title
    api = _json(client, f"/api/run/{_path(runs[name])}")
    assert api["status"] == status and api["status_reason"]


def test_a_crashed_runs_traceback_is_right_under_the_title(client, runs):
    text = _page(client, runs["oom"])
    assert 'id="crash-card"' in text
    card = text[text.index('id="crash-card"'):]
    shown = card[: card.index("</pre>")]
    assert "torch.OutOfMemoryError: CUDA out of memory." in shown
    assert "Traceback (most recent call last):" in shown
    assert "warming up" not in shown  # from the traceback on
    assert "stderr.log ends in a traceback" in text
    assert text.index('id="crash-card"') < text.index('id="curve-card"')
    assert text.index('id="crash-card"') < text.index('id="table-fields"')


def test_a_run_silent_too_long_is_crashed_with_its_stderr_tail(client, runs):
    text = _page(client, runs["stale"])
    card = text[text.index('id="crash-card"'):]
    assert "epoch 2" in card[: card.index("</pre>")]
    assert "no file written for 3 h" in text


def test_finished_and_unfinished_runs_have_no_crash_card(client, runs):
    for name in ("finished", "unfinished"):
        assert 'id="crash-card"' not in _page(client, runs[name])


def test_the_badge_is_the_rule_of_hermes_gc(runs):
    from pyhermes.curation import run_status

    run = Experiment.load(runs["unfinished"])
    now = time.time()
    assert run_status(run, now=now)[0] == "unfinished"
    assert run_status(run, now=now + 10 * 24 * 3600)[0] == "crashed"  # the same run, days later
    assert run_status(run, now=now, window=0)[0] == "crashed"
    assert run_status(Experiment.load(runs["finished"]), now=now + 10 * 24 * 3600)[0] == "finished"


# --------------------------------------------------------------------------- logs


def test_the_log_viewer_opens_on_the_last_page_of_a_large_log(client, runs):
    text = _page(client, runs["finished"])
    viewer = re.search(r'<pre class="log log-view" id="log-view"[^>]*>', text).group(0)
    assert f'data-total="{BIG_LOG_LINES}"' in viewer and 'data-log="stdout.log"' in viewer
    assert f'data-end="{BIG_LOG_LINES}"' in viewer
    assert f"episode {BIG_LOG_LINES - 1} return" in text
    assert "episode 0 return" not in text
    options = re.findall(r'<option value="([^"]+)"', text[text.index('id="log-name"'):])
    assert options == ["stdout.log", "stderr.log", "beside.log", "train.log"]


def test_a_crashed_run_opens_its_stderr_in_the_viewer(client, runs):
    text = _page(client, runs["oom"])
    assert 'data-log="stderr.log"' in re.search(r'<pre class="log log-view"[^>]*>', text).group(0)
    chosen = _page(client, runs["oom"], "?log=stdout.log")
    assert 'data-log="stdout.log"' in re.search(r'<pre class="log log-view"[^>]*>', chosen).group(0)


def test_log_pages_of_a_large_log(client, runs):
    api = f"/api/run/{_path(runs['finished'])}/log/stdout.log"
    last = _json(client, api)
    assert (last["start"], last["end"], last["total"]) == (BIG_LOG_LINES - 200, BIG_LOG_LINES, BIG_LOG_LINES)
    assert last["lines"][-1] == f"episode {BIG_LOG_LINES - 1} return {BIG_LOG_LINES - 1}.5"
    assert last["size"] == (runs["finished"] / "stdout.log").stat().st_size
    middle = _json(client, api + "?start=54321&count=3")
    assert middle["lines"] == [f"episode {i} return {i}.5" for i in (54321, 54322, 54323)]
    assert (middle["start"], middle["end"]) == (54321, 54324)
    first = _json(client, api + "?start=0&count=2")
    assert first["lines"] == ["episode 0 return 0.5", "episode 1 return 1.5"]
    past = _json(client, api + f"?start={BIG_LOG_LINES + 5}&count=10")
    assert past["start"] == BIG_LOG_LINES - 10 and len(past["lines"]) == 10
    short = _json(client, f"/api/run/{_path(runs['finished'])}/log/train.log")
    assert short["lines"] == ["a", "b", "c"] and short["total"] == 3


@pytest.mark.parametrize("query", ["?count=0", "?count=5001", "?count=x", "?start=abc"])
def test_bad_log_windows_are_400s(client, runs, query):
    api = f"/api/run/{_path(runs['finished'])}/log/stdout.log"
    assert _json(client, api + query, 400)["error"]


@pytest.mark.parametrize("name", ["model.pth", "nope.log", "..", "escape.txt", "pipe"])
def test_only_the_runs_log_files_are_paged(client, runs, name):
    assert _json(client, f"/api/run/{_path(runs['finished'])}/log/{quote(name)}", 404)["error"]


# --------------------------------------------------------------------------- downloads


def test_files_are_links_with_human_sizes(client, runs):
    text = _page(client, runs["finished"])
    table = text[text.index('id="files-table"'):]
    table = table[: table.index("</table>")]
    base = f"/api/run/{_path(runs['finished'])}/file/"
    assert f'<a href="{base}model.pth" class="file-link" download="model.pth">model.pth</a>' in table
    size = (runs["finished"] / "model.pth").stat().st_size
    assert f'title="{size:,} bytes">{size / 1e6:.1f} MB</td>' in table
    assert f'href="{base}escape.txt"' not in table  # a link out of the run: listed, not a link
    assert f'href="{base}pipe"' not in table and f'href="{base}plots"' not in table
    assert "plots/" in table


def test_a_download_has_its_type_and_disposition(client, runs):
    base = f"/api/run/{_path(runs['finished'])}/file/"
    response = client.get(base + "model.pth")
    assert response.status_code == 200
    assert response.data == (runs["finished"] / "model.pth").read_bytes()
    assert response.headers["Content-Disposition"] == 'attachment; filename="model.pth"'
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    log = client.get(base + "stdout.log")
    assert log.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert client.get(base + "plots").status_code == 403
    assert client.get(base + "page.html").headers["Content-Type"].startswith("text/html")
    assert "attachment" in client.get(base + "page.html").headers["Content-Disposition"]

    name = 'na\u00efve "report";.txt'
    odd = client.get(base + quote(name, safe=""))
    assert odd.status_code == 200 and odd.data == "caf\u00e9\n".encode()
    disposition = odd.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="naive _report_;.txt"; ')
    assert disposition.endswith("filename*=UTF-8''" + quote(name, safe=""))

    inside = client.get(base + "beside.log")  # a link to a file beside it is that file
    assert inside.status_code == 200 and inside.data == b"a\nb\nc"


@pytest.mark.parametrize(
    ("name", "status"),
    [("escape.txt", 403), ("plots", 403), ("pipe", 403), ("..", 403), ("nope.bin", 404)],
)
def test_refused_downloads_are_json(client, runs, name, status):
    data = _json(client, f"/api/run/{_path(runs['finished'])}/file/{quote(name, safe='')}", status)
    assert data["error"]
    assert str(runs["finished"].parent) not in data["error"]  # no server path in the answer
    assert "not for the web" not in json.dumps(data)


def test_paths_out_of_the_root_are_refused_for_files_and_logs(client, runs):
    for url in ("/api/run/../../etc/file/passwd", "/api/run/%2e%2e/%2e%2e/etc/log/passwd.log",
                "/api/run/experiments/%2e%2e/%2e%2e/file/x"):
        response = client.get(url)
        assert response.status_code in (400, 404)
        assert "root:" not in response.get_data(as_text=True)


# --------------------------------------------------------------------------- curve


def test_the_window_is_read_from_the_url(client, runs):
    text = _page(client, runs["finished"], "?window=50")
    assert 'value="50" id="window"' in text
    chart = re.search(r'id="curve-chart" data-url="([^"]+)"', text).group(1)
    assert "window=50" in chart and "raw=1" in chart
    assert "window=100" in re.search(r'data-url="([^"]+)"', _page(client, runs["finished"])).group(1)
    assert client.get(f"/run/{_path(runs['finished'])}?window=0").status_code == 400


def test_a_run_without_scores_says_so_quietly(client, runs):
    text = _page(client, runs["no_scores"])
    assert 'id="no-scores"' in text and "no scores yet" in text
    assert "/api/curves" not in text and 'id="curve-chart"' not in text
    assert 'class="error"' not in text


# --------------------------------------------------------------------------- rundir reader


def test_log_windows_read_by_line_number(tmp_path):
    log = tmp_path / "stdout.log"
    lines = [f"{i:07d} " + "x" * (i % 37) for i in range(250_000)]
    log.write_text("\n".join(lines) + "\n")
    for start in (0, 1, 123_456, 249_990):
        window = rundir.read_log_window(log, start, 7)
        assert window.lines == lines[start : start + 7] and window.start == start
        assert window.total == len(lines)
    tail = rundir.read_log_window(log, None, 5)
    assert tail.lines == lines[-5:] and tail.start == len(lines) - 5
    assert rundir.read_log_window(log, -1, 3).lines == lines[-3:]


def test_log_windows_follow_a_growing_and_a_rewritten_log(tmp_path):
    log = tmp_path / "train.log"
    log.write_bytes(b"one\ntwo\nthr")  # the last line not ended yet
    first = rundir.read_log_window(log, None, 10)
    assert first.lines == ["one", "two", "thr"] and first.total == 3
    with open(log, "ab") as handle:
        handle.write(b"ee\nfour\n")
    assert rundir.read_log_window(log, None, 2).lines == ["three", "four"]
    assert rundir.read_log_window(log, 2, 1).total == 4
    log.write_bytes(b"new\n")  # truncated and rewritten
    assert rundir.read_log_window(log, None, 10) == rundir.LogWindow(0, ["new"], 1, 4)
    log.write_bytes(b"")
    assert rundir.read_log_window(log, None, 10).lines == []


def test_log_lines_as_shown(tmp_path):
    log = tmp_path / "progress.log"
    long = "\u00e9" * rundir.MAX_LOG_LINE_BYTES  # two bytes each: cut in the middle of one
    log.write_bytes(
        b"  0%|  |\r 50%|# |\r100%|##|\r\n"  # a progress bar redrawn in place, CRLF
        b"caf\xe9 latin-1\n"
        + long.encode() + b"\n"
    )
    window = rundir.read_log_window(log, 0, 10)
    assert window.lines[0] == "100%|##|"
    assert window.lines[1] == "caf\u00e9 latin-1"
    cut = window.lines[2]
    assert cut.startswith("\u00e9" * (rundir.MAX_LOG_LINE_BYTES // 2))
    assert cut.endswith(f"… ({rundir.MAX_LOG_LINE_BYTES:,} more bytes)")
    with pytest.raises(ValueError):
        rundir.read_log_window(log, 0, 0)


def test_run_files_and_their_refusals(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "a.txt").write_text("abc")
    (run_dir / "sub").mkdir()
    (run_dir / "in.txt").symlink_to(run_dir / "a.txt")
    (run_dir / "out.txt").symlink_to(tmp_path / "elsewhere.txt")
    (tmp_path / "elsewhere.txt").write_text("x")
    found = {item.name: (item.kind, item.size) for item in rundir.run_files(run_dir)}
    assert found == {"a.txt": ("file", 3), "in.txt": ("file", 3), "out.txt": ("link", None),
                     "sub": ("folder", None)}
    descriptor, status = rundir.open_run_file(run_dir, "in.txt")
    os.close(descriptor)
    assert status.st_size == 3
    for name, error in (("..", ValueError), ("sub/x", ValueError), ("out.txt", RunFormatError),
                        ("sub", RunFormatError), ("gone", FileNotFoundError)):
        with pytest.raises(error):
            rundir.open_run_file(run_dir, name)
    assert rundir.content_type("stderr.log") == "text/plain; charset=utf-8"
    assert rundir.content_type("x.tar.gz") == "application/octet-stream"
    assert rundir.content_type("plot.png") == "image/png"


def test_human_sizes():
    from pyhermes.present.details import human_size

    assert [human_size(size) for size in (0, 999, 1000, 1_234_567, 999_960, 5 * 10**12)] == [
        "0 B", "999 B", "1.0 kB", "1.2 MB", "1.0 MB", "5.0 TB"]
    assert human_size(None) == ""
