"""hermes serve's curation: tags as chips, notes on the run page, and the writes of
``hermes serve --writable`` (``POST /api/runs/tags``, ``/notes``, ``/archive``).

Flask's test client against a real index of a generated corpus (a new corpus per
test: these tests write). What a write did is checked on the disk (the run
directories, ``ROOT/.archive``) and in an index rebuilt from the disk; a refused write
must leave the tree exactly as it was.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from legacy import make_corpus, write_run

from pyhermes import Catalog, Experiment, rundir
from pyhermes.errors import InvalidTagError

pytest.importorskip("flask")
pytest.importorskip("plotly")

from pyhermes.web import create_app  # noqa: E402

N_RUNS = 16
#: What the test client's requests name as the server (``base_url`` http://localhost/).
ORIGIN = "http://localhost"
WRITES = ("/api/runs/tags", "/api/runs/notes", "/api/runs/archive")
SCRIPT_TAG = "<script>alert('x')"  # allowed (no slash): must render escaped


@pytest.fixture
def root(tmp_path: Path) -> Path:
    top = tmp_path / "runs"
    make_corpus(top, N_RUNS, seed=3, scores_per_run=40)
    return top


def _sweep(root: Path) -> Path:
    return root / "experiments" / "train_dqn" / "sweep"


def _finished(root: Path) -> list[Experiment]:
    """The finished runs on disk (never refused as running), by identifier."""
    runs = Experiment.load_all(_sweep(root), index=False)
    return sorted((run for run in runs if run.is_finished), key=lambda run: run.identifier)


def _serve(root: Path, writable: bool = True):
    app = create_app(root, writable=writable)
    app.extensions["hermes"].wait()
    return app


@pytest.fixture
def app(root: Path):
    return _serve(root)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every entry below ``root`` but the index folder ``.hermes``."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name != ".hermes"]
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            status = os.lstat(path)
            state[os.path.relpath(path, root)] = (status.st_size, status.st_mtime_ns)
    return state


def _curation_files(root: Path) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(dirpath, name), root)
        for dirpath, _, filenames in os.walk(root)
        for name in filenames
        if name in (rundir.TAGS_FILE, rundir.NOTES_FILE)
    )


def _post(client, url: str, body: Any, *, token: str | None, origin: str | None = ORIGIN,
          referer: str | None = None, content_type: str = "application/json"):
    headers = {}
    if token is not None:
        headers["X-Hermes-Token"] = token
    if origin is not None:
        headers["Origin"] = origin
    if referer is not None:
        headers["Referer"] = referer
    data = json.dumps(body) if content_type == "application/json" else body
    return client.post(url, data=data, headers=headers, content_type=content_type)


def _token(app) -> str:
    return app.extensions["hermes"].token


def _answer(response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    assert response.mimetype == "application/json"
    return json.loads(response.data)


def _total(client, where: str) -> int:
    response = client.get("/api/runs", query_string={"where": where, "per_page": 500})
    return _answer(response)["total"]


def _normal(value: Any) -> Any:
    """A value of either backend in one form (times as datetimes, to the second)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.replace(microsecond=0, tzinfo=None)
    return value


def _index_state(catalog: Catalog, root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What the index holds of the runs and their curation, in a form both backends share
    (and any index place: a ``.hermes`` index stores paths relative to ROOT, an explicit
    one paths relative to the file system's root)."""
    queries = {
        "runs": "SELECT path, identifier, finished FROM runs ORDER BY path",
        "tags": "SELECT r.path, t.tag FROM run_tags t JOIN runs r ON r.id = t.run_id ORDER BY 1, 2",
        "notes": "SELECT r.path, n.time, n.text FROM run_notes n JOIN runs r ON r.id = n.run_id "
                 "ORDER BY 1, 2, 3",
    }
    prefix = root.resolve().relative_to(root.resolve().anchor).as_posix() + "/"

    def path(value: str) -> str:
        value = value.lstrip("/")
        return value[len(prefix):] if value.startswith(prefix) else value

    return {
        name: sorted(
            (path(row[0]), *(_normal(value) for value in row[1:])) for row in catalog.sql(query).rows
        )
        for name, query in queries.items()
    }


def _equals_a_rebuild(app, root: Path, tmp_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Assert that the served index holds what an index built afresh from the disk holds."""
    served = _index_state(app.extensions["hermes"].catalog, root)
    fresh = Catalog.open(root, index=str(tmp_path / f"rebuilt-{len(list(tmp_path.iterdir()))}.sqlite"))
    assert served == _index_state(fresh, root)
    return served


# --------------------------------------------------------------------------- refusals


def test_a_read_only_server_refuses_every_write(root: Path):
    app = _serve(root, writable=False)
    client = app.test_client()
    identifier = _finished(root)[0].identifier
    before = _tree(root)
    page = client.get("/runs").get_data(as_text=True)
    assert 'name="hermes-token"' not in page and 'id="curation"' not in page
    bodies = {
        "/api/runs/tags": {"runs": [identifier], "add": ["paper"]},
        "/api/runs/notes": {"runs": [identifier], "text": "a note"},
        "/api/runs/archive": {"runs": [identifier]},
    }
    for url, body in bodies.items():
        for token in (None, "", "guess"):
            error = _answer(_post(client, url, body, token=token), 403)["error"]
            assert "read-only" in error and "--writable" in error
        # GET never writes: a 405, in JSON like every /api/ error.
        response = client.get(url, query_string={"runs": identifier, "add": "paper"})
        assert response.status_code == 405 and response.mimetype == "application/json"
        assert "POST" in response.headers["Allow"]
    assert _tree(root) == before
    assert _total(client, "tag = paper") == 0


@pytest.mark.parametrize(
    "case",
    ["no token", "empty token", "wrong token", "token in the body", "other origin",
     "null origin", "other referer", "no origin or referer", "other origin, own referer"],
)
def test_a_write_without_the_token_or_from_another_origin_is_refused(root: Path, app, case: str):
    client = app.test_client()
    token = _token(app)
    identifier = _finished(root)[0].identifier
    headers: dict[str, Any] = {"token": token}
    if case == "no token":
        headers["token"] = None
    elif case == "empty token":
        headers["token"] = ""
    elif case == "wrong token":
        headers["token"] = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif case == "token in the body":
        headers["token"] = None
    elif case == "other origin":
        headers["origin"] = "http://evil.example"
    elif case == "null origin":
        headers["origin"] = "null"
    elif case == "other referer":
        headers["origin"], headers["referer"] = None, "http://evil.example/runs"
    elif case == "no origin or referer":
        headers["origin"] = None
    elif case == "other origin, own referer":
        headers["origin"], headers["referer"] = "http://localhost:9999", ORIGIN + "/runs"
    before = _tree(root)
    for url, body in (
        ("/api/runs/tags", {"runs": [identifier], "add": ["paper"]}),
        ("/api/runs/notes", {"runs": [identifier], "text": "a note"}),
        ("/api/runs/archive", {"runs": [identifier]}),
    ):
        if case == "token in the body":
            body = {**body, "token": token}
        error = _answer(_post(client, url, body, **headers), 403)["error"]
        assert error.startswith("refused")
    assert _tree(root) == before  # no hermes.tags, no hermes.notes, nothing moved
    assert not _curation_files(root) and not (root / ".archive").exists()
    assert _total(client, "tag = paper") == 0


def test_the_own_origin_by_referer_alone_is_accepted(root: Path, app):
    """A browser that sends no Origin (older ones, on same-origin requests) still may write."""
    client = app.test_client()
    identifier = _finished(root)[0].identifier
    response = _post(client, "/api/runs/tags", {"runs": [identifier], "add": ["paper"]},
                     token=_token(app), origin=None, referer=ORIGIN + "/runs?where=finished")
    assert _answer(response)["runs"][0]["after"] == ["paper"]


def test_bad_input_is_a_400_with_the_library_message_and_writes_nothing(root: Path, app):
    client = app.test_client()
    token = _token(app)
    identifier = _finished(root)[0].identifier
    before = _tree(root)
    for tag in ("a/b", "", "  ", "two\nlines", "x" * 201, "back\\slash"):
        with pytest.raises(InvalidTagError) as expected:
            rundir.check_tag(tag)
        for key in ("add", "remove"):
            body = {"runs": [identifier], key: ["good", tag] if key == "add" else [tag]}
            answer = _answer(_post(client, "/api/runs/tags", body, token=token), 400)
            assert answer["error"] == str(expected.value)
    for url, body in (
        ("/api/runs/tags", {"runs": [identifier]}),  # no tag
        ("/api/runs/tags", {"runs": [identifier], "add": ["a"], "remove": ["a"]}),
        ("/api/runs/tags", {"runs": [], "add": ["a"]}),
        ("/api/runs/tags", {"runs": [""], "add": ["a"]}),
        ("/api/runs/tags", {"runs": [3], "add": ["a"]}),
        ("/api/runs/tags", {"add": ["a"]}),
        ("/api/runs/tags", ["not", "an", "object"]),
        ("/api/runs/notes", {"runs": [identifier]}),
        ("/api/runs/notes", {"runs": [identifier], "text": "  \n"}),
        ("/api/runs/notes", {"runs": [identifier], "text": 5}),
        ("/api/runs/archive", {}),
    ):
        assert _answer(_post(client, url, body, token=token), 400)["error"]
    # Not JSON: a form post (what another site could send without asking) is no write.
    response = _post(client, "/api/runs/tags", f"runs={identifier}&add=a", token=token,
                     content_type="application/x-www-form-urlencoded")
    assert "JSON object" in _answer(response, 400)["error"]
    response = client.post("/api/runs/tags", data="{not json",
                           headers={"Origin": ORIGIN, "X-Hermes-Token": token},
                           content_type="application/json")
    assert _answer(response, 400)["error"]
    assert _tree(root) == before


# --------------------------------------------------------------------------- writes


def test_tag_untag_note_and_archive_then_the_index_equals_a_rebuild(root: Path, backend, tmp_path):
    app = _serve(root)
    client = app.test_client()
    token = _token(app)
    runs = _finished(root)[:3]
    chosen = [run.identifier for run in runs]
    rebuilt = tmp_path / "rebuilt"
    rebuilt.mkdir()

    # Tag: every chosen run gains both tags; an unknown identifier is refused, with why.
    body = {"runs": [*chosen, "2001_01_01_000000000000_0_nope"], "add": ["paper", SCRIPT_TAG]}
    answer = _answer(_post(client, "/api/runs/tags", body, token=token))
    assert sorted(entry["identifier"] for entry in answer["runs"]) == sorted(chosen)
    for entry in answer["runs"]:
        assert entry["before"] == [] and entry["after"] == sorted(["paper", SCRIPT_TAG])
        assert entry["changed"] is True
    assert answer["refused"] == [
        {"identifier": "2001_01_01_000000000000_0_nope", "reason": "no run has this identifier"}
    ]
    for run in runs:
        assert rundir.read_tags(run.path_to_experiment) == sorted(["paper", SCRIPT_TAG])
    assert _total(client, "tag = paper") == 3
    assert _total(client, "tag = " + json.dumps(SCRIPT_TAG)) == 3
    assert _equals_a_rebuild(app, root, rebuilt)["tags"]

    # Again: nothing changes, and the answer says so.
    answer = _answer(_post(client, "/api/runs/tags", {"runs": chosen, "add": ["paper"]}, token=token))
    assert [entry["changed"] for entry in answer["runs"]] == [False] * 3

    # Untag one tag of two runs; add and remove in one request.
    body = {"runs": chosen[:2], "add": ["best"], "remove": [SCRIPT_TAG]}
    answer = _answer(_post(client, "/api/runs/tags", body, token=token))
    assert sorted(tuple(entry["after"]) for entry in answer["runs"]) == [("best", "paper")] * 2
    assert rundir.read_tags(runs[2].path_to_experiment) == sorted(["paper", SCRIPT_TAG])
    assert _total(client, "tag = " + json.dumps(SCRIPT_TAG)) == 1
    assert _total(client, "tag = best and tag = paper") == 2
    _equals_a_rebuild(app, root, rebuilt)

    # Note: each run gets the note, in its hermes.notes.
    text = "Diverged after 2M steps\n<b>not bold</b>"
    answer = _answer(_post(client, "/api/runs/notes", {"runs": chosen, "text": text}, token=token))
    assert sorted(entry["identifier"] for entry in answer["runs"]) == sorted(chosen)
    assert {entry["text"] for entry in answer["runs"]} == {text} and not answer["refused"]
    for run in runs:
        assert [note.text for note in rundir.read_notes(run.path_to_experiment)] == [text]
    assert _total(client, 'note ~ "diverged"') == 3
    assert _equals_a_rebuild(app, root, rebuilt)["notes"]

    # Archive one run: it moves below ROOT/.archive, leaves the index and the counts.
    total = _total(client, "")
    answer = _answer(_post(client, "/api/runs/archive", {"runs": [chosen[0]]}, token=token))
    assert [entry["identifier"] for entry in answer["runs"]] == [chosen[0]] and not answer["refused"]
    relative = runs[0].path_to_experiment.relative_to(root)
    assert not runs[0].path_to_experiment.exists()
    assert (root / ".archive" / relative / rundir.TAGS_FILE).is_file()
    assert answer["runs"][0]["target"] == (Path(".archive") / relative).as_posix()
    assert _total(client, "") == total - 1
    assert _total(client, "tag = paper") == 2
    page = client.get("/runs").get_data(as_text=True)
    assert f'data-total="{total - 1}"' in page and chosen[0] not in page
    state = _equals_a_rebuild(app, root, rebuilt)
    assert all(not path.startswith(".archive") for path, *_ in state["runs"])

    # The archived run is no longer a run of the catalogue: a second archive refuses it.
    answer = _answer(_post(client, "/api/runs/archive", {"runs": [chosen[0]]}, token=token))
    assert answer["runs"] == [] and answer["refused"][0]["identifier"] == chosen[0]


def test_a_running_run_and_an_ambiguous_identifier_are_refused_with_the_reason(root: Path, tmp_path):
    sweep = _sweep(root)
    running = write_run(sweep, start=datetime(2030, 1, 1, 12, 0, 0), finished=False,
                        scores=[1.0, 2.0])  # files written now: still being written
    copied = _finished(root)[0]
    twin = root / "copies" / copied.identifier
    shutil.copytree(copied.path_to_experiment, twin)
    app = _serve(root)
    client = app.test_client()
    token = _token(app)
    identifier = running.name
    answer = _answer(_post(client, "/api/runs/archive", {"runs": [identifier]}, token=token))
    assert answer["runs"] == []
    assert answer["refused"][0]["identifier"] == identifier and answer["refused"][0]["reason"]
    assert running.is_dir() and not (root / ".archive").exists()
    # Tagging a running run is fine (the tag file is the run's own, written atomically).
    answer = _answer(_post(client, "/api/runs/tags", {"runs": [identifier], "add": ["live"]}, token=token))
    assert answer["runs"][0]["after"] == ["live"]
    # A copied run: two runs share the identifier, so a write naming it is refused.
    for url, body in (("/api/runs/tags", {"add": ["x"]}), ("/api/runs/notes", {"text": "x"}),
                      ("/api/runs/archive", {})):
        answer = _answer(_post(client, url, {"runs": [copied.identifier], **body}, token=token))
        assert answer["runs"] == []
        assert "2 runs have this identifier" in answer["refused"][0]["reason"]
    assert not (copied.path_to_experiment / rundir.TAGS_FILE).exists()
    assert not (twin / rundir.NOTES_FILE).exists()


# --------------------------------------------------------------------------- pages


def _chip_links(page: str) -> dict[str, str]:
    """tag -> the URL of its chip, from a page's HTML."""
    links = re.findall(r'<a class="tag-chip" data-tag="([^"]*)"[^>]*href="([^"]*)"', page)
    return {html.unescape(tag): html.unescape(href) for tag, href in links}


def test_pages_show_tags_as_chips_and_notes_newest_first_escaped(root: Path, app):
    client = app.test_client()
    token = _token(app)
    runs = _finished(root)[:2]
    chosen = [run.identifier for run in runs]
    quoted = 'say "hi", then'
    _answer(_post(client, "/api/runs/tags", {"runs": chosen, "add": ["paper", SCRIPT_TAG, quoted]},
                  token=token))
    _answer(_post(client, "/api/runs/notes", {"runs": chosen[:1], "text": "first <i>note</i>"}, token=token))
    _answer(_post(client, "/api/runs/notes", {"runs": chosen[:1], "text": "second\nnote"}, token=token))

    # The runs page: the chips beside the identifiers, escaped; each links to its filter.
    page = client.get("/runs").get_data(as_text=True)
    assert SCRIPT_TAG not in page and html.escape(SCRIPT_TAG) in page
    assert page.count('class="tag-chip"') == 3 * 2
    links = _chip_links(page)
    assert set(links) == {"paper", SCRIPT_TAG, quoted}
    for url in links.values():
        where = parse_qs(urlparse(url).query)["where"][0]
        assert where.startswith("tag = ")
        filtered = client.get(url).get_data(as_text=True)
        assert 'data-total="2"' in filtered and all(identifier in filtered for identifier in chosen)
        assert _total(client, where) == 2, where
    assert parse_qs(urlparse(links["paper"]).query)["where"] == ['tag = "paper"']
    assert parse_qs(urlparse(links[quoted]).query)["where"] == ['tag = "say \\"hi\\", then"']

    # The token is in the page of a writable server, with the curation bar.
    state = app.extensions["hermes"]
    assert f'<meta name="hermes-token" content="{state.token}">' in page
    assert 'id="curation"' in page and 'id="archive-dialog"' in page

    # With the tags column shown, the chips are in it (and not beside the identifier too).
    page = client.get("/runs?columns=identifier,tags,final_mean").get_data(as_text=True)
    assert page.count('class="tag-chip"') == 3 * 2 and SCRIPT_TAG not in page

    # The run page: the tags, and the notes newest first, escaped.
    page = client.get("/run/" + runs[0].path_to_experiment.relative_to(root).as_posix()).get_data(as_text=True)
    tags_html = re.search(r'<p class="tags" id="run-tags">(.*?)</p>', page, re.S).group(1)
    assert set(_chip_links(tags_html)) == {"paper", SCRIPT_TAG, quoted}
    notes_html = re.search(r'<ul id="run-notes">(.*?)</ul>', page, re.S).group(1)
    texts = [html.unescape(text) for text in re.findall(r'<div class="note-text">(.*?)</div>', notes_html, re.S)]
    assert texts == ["second\nnote", "first <i>note</i>"]
    assert "<i>note</i>" not in page and SCRIPT_TAG not in page
    assert 'data-run="' + chosen[0] + '"' in page  # the bar acts on this run

    # A run without any: "(none)"; and a read-only server shows chips but no bar.
    page = client.get("/run/" + runs[1].path_to_experiment.relative_to(root).as_posix()).get_data(as_text=True)
    assert '<ul id="run-notes"><li class="hint">(none)</li></ul>' in page
    readonly = _serve(root, writable=False).test_client()
    page = readonly.get("/runs").get_data(as_text=True)
    assert page.count('class="tag-chip"') == 3 * 2
    assert 'id="curation"' not in page and "hermes-token" not in page


def test_the_token_differs_per_server_and_frames_are_refused(root: Path, app):
    other = _serve(root)
    assert _token(app) != _token(other) and len(_token(app)) >= 32
    client = app.test_client()
    identifier = _finished(root)[0].identifier
    response = _post(client, "/api/runs/tags", {"runs": [identifier], "add": ["x"]}, token=_token(other))
    assert _answer(response, 403)["error"].startswith("refused")
    headers = client.get("/runs").headers
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_hermes_serve_is_read_only_unless_writable(root: Path, monkeypatch):
    import pyhermes.web
    from pyhermes.cli.main import hermes_main

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(pyhermes.web, "serve", lambda *args, **kwargs: calls.append(kwargs))
    assert hermes_main(["serve", str(root), "--sync", "none"]) == 0
    assert hermes_main(["serve", str(root), "--writable", "--port", "0"]) == 0
    assert [call["writable"] for call in calls] == [False, True]
