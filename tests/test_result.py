"""Tests of pyhermes.result.Result: recording, atomic saving and safe loading."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyhermes.errors import HermesError, UntrustedFileError
from pyhermes.result import Result


@pytest.fixture
def torch() -> Any:
    return pytest.importorskip("torch")




class MakesMarker:
    """Unpickling this runs os.makedirs(marker): what a hostile file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.makedirs, (str(self.marker),))


# --------------------------------------------------------------------------- import cost


def test_import_does_not_load_torch_or_matplotlib() -> None:
    code = (
        "import sys, pyhermes.result, pyhermes.plot\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- creating


def test_new_and_names(tmp_path: Path) -> None:
    training = Result.new("training")  # the documented call: the name, not a path
    assert training == {} and training.path is None and training.name == "training"
    assert training.file_name == "training.result"
    bound = Result.new("run", path=tmp_path / "run.result")
    assert bound.path == tmp_path / "run.result" and bound.name == "run"
    with pytest.raises(ValueError, match="plain file name"):
        Result.new("../evil")
    with pytest.raises(TypeError):
        Result.new()  # type: ignore[call-arg]


def test_documented_constructor(tmp_path: Path) -> None:
    result = Result("eval", tmp_path / "eval.result", {"loss": [1.0]})
    assert result == {"loss": [1.0]} and result.name == "eval"
    assert result.path == tmp_path / "eval.result"
    assert Result("empty") == {} and Result("empty").path is None


def test_from_namespace_returns_result(tmp_path: Path) -> None:
    namespace = argparse.Namespace(lr=0.01, layers=[64, 64], name="dqn")
    result = Result.from_namespace("args", namespace)
    assert isinstance(result, Result) and result.name == "args" and result.path is None
    assert result == {"lr": 0.01, "layers": [64, 64], "name": "dqn"}
    result["lr"] = 1.0
    assert namespace.lr == 0.01  # a copy, not the namespace's own dict
    bound = Result.from_namespace("args", namespace, path=tmp_path / "args.result")
    assert bound.path == tmp_path / "args.result"


# --------------------------------------------------------------------------- recording


def test_store_scalar_and_array() -> None:
    result = Result.new("result")
    result.store_scalar(1, "loss")
    result.store_scalar(np.float32(0.5), "loss")
    result.store_scalar([0.25, np.int64(2)], "loss")
    result.store_scalar(np.array(0.125), "loss")
    assert result["loss"] == [1.0, 0.5, 0.25, 2.0, 0.125]
    assert all(type(value) is float for value in result["loss"])

    row = np.array([1.0, 2.0])
    result.store_array(row, "weights")
    row[0] = 99.0  # the stored row is a copy
    result.store_array([3.0, 4.0], "weights")
    assert len(result["weights"]) == 2
    np.testing.assert_array_equal(result["weights"][0], [1.0, 2.0])


def test_store_rejects_wrong_values() -> None:
    result = Result.new("result")
    with pytest.raises(TypeError, match="needs numbers"):
        result.store_scalar("0.5", "loss")
    with pytest.raises(ValueError, match="1-D"):
        result.store_array(np.zeros((2, 2)), "weights")
    with pytest.raises(ValueError, match="2-D"):
        result.store_scalar(np.zeros((2, 2)), "loss")
    result["name"] = "dqn"
    with pytest.raises(TypeError, match="'name'"):
        result.store_scalar(1.0, "name")
    assert "loss" not in result and "weights" not in result


def test_store_with_tensors(torch: Any) -> None:
    result = Result.new("result")
    result.store_scalar(torch.tensor(0.5, requires_grad=True) * 2, "loss")
    result.store_array(torch.ones(3, requires_grad=True) * 2, "grad")
    assert result["loss"] == [1.0]
    np.testing.assert_array_equal(result["grad"][0], [2.0, 2.0, 2.0])


def test_log_stores_numbers_as_scalars_and_others_as_arrays() -> None:
    result = Result.new("result")
    result.log({"loss": 0.5, "step": 3, "q": np.array([1.0, 2.0])})
    result.log({"loss": np.float64(0.25), "step": 4, "q": [3.0, 4.0]})
    assert result["loss"] == [0.5, 0.25]
    assert result["step"] == [3.0, 4.0]
    np.testing.assert_array_equal(np.stack(result["q"]), [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match="string"):
        result.log({"loss": 0.1, "note": "hello"})
    with pytest.raises(ValueError, match="'grid'"):
        result.log({"loss": 0.1, "grid": np.zeros((2, 2))})
    assert result["loss"] == [0.5, 0.25]  # nothing stored by a failing log()


# --------------------------------------------------------------------------- save / load


def test_round_trip(torch: Any, tmp_path: Path) -> None:
    result = Result.new("run", path=tmp_path / "run.result")
    for value in (1.0, 0.5, 0.25):
        result.store_scalar(value, "loss")
    result.store_array(np.array([1.0, 2.0, 3.0]), "q")
    result.store_array(np.array([4.0, 5.0, 6.0]), "q")
    result.store_array(np.array([1, 2]), "counts")
    result.store_array(np.array([3, 4]), "counts")
    result["tags"] = ["baseline", "seed-1"]
    result["config"] = {"lr": 0.01, "layers": (64, 64), "out": Path("x/y")}
    result["matrix"] = np.eye(2)
    result["weights"] = torch.arange(4.0)

    written = result.save()
    assert written == tmp_path / "run.result"

    loaded = Result.load(written)
    assert loaded.path == written and loaded.name == "run"
    assert isinstance(loaded["loss"], np.ndarray)
    assert loaded["loss"].dtype == np.float64 and loaded["loss"].shape == (3,)
    np.testing.assert_array_equal(loaded["loss"], [1.0, 0.5, 0.25])
    assert loaded["q"].shape == (2, 3)
    np.testing.assert_array_equal(loaded["q"], [[1, 2, 3], [4, 5, 6]])
    assert loaded["counts"].dtype.kind == "i"
    assert loaded["tags"] == ["baseline", "seed-1"] and isinstance(loaded["tags"], list)
    assert loaded["config"] == {"lr": 0.01, "layers": (64, 64), "out": "x/y"}
    np.testing.assert_array_equal(loaded["matrix"], np.eye(2))
    assert torch.equal(loaded["weights"], torch.arange(4.0))


def test_tags_of_numbers_stay_a_list(torch: Any, tmp_path: Path) -> None:
    result = Result.new("tags", path=tmp_path / "tags.result")
    result["tags"] = [1, 2]
    result.store_scalar(1, "other")
    loaded = Result.load(result.save())
    assert loaded["tags"] == [1, 2]
    assert isinstance(loaded["other"], np.ndarray)


def test_appending_after_load(torch: Any, tmp_path: Path) -> None:
    result = Result.new("run", path=tmp_path / "run.result")
    result.store_scalar(1.0, "loss")
    result.store_array([1.0, 2.0], "q")
    loaded = Result.load(result.save())
    loaded.store_scalar(2.0, "loss")
    loaded.store_array([3.0, 4.0], "q")
    again = Result.load(loaded.save())
    np.testing.assert_array_equal(again["loss"], [1.0, 2.0])
    np.testing.assert_array_equal(again["q"], [[1.0, 2.0], [3.0, 4.0]])


def test_save_into_directory(torch: Any, tmp_path: Path) -> None:
    result = Result.new("result")
    result.store_scalar(1.0, "loss")
    written = result.save(tmp_path)
    assert written == tmp_path / "result.result"  # <directory>/<name>.result
    assert result.path == written  # a result without a path is bound to its first file
    assert Result.load(written)["loss"].tolist() == [1.0]

    other = tmp_path / "copies"
    other.mkdir()
    copy = result.save(other)
    assert copy == other / "result.result" and result.path == written


def test_save_is_atomic(torch: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "run.result"
    result = Result.new("run", path=path)
    result.store_scalar(1.0, "loss")
    result.save()
    assert sorted(os.listdir(tmp_path)) == ["run.result"]  # no temporary file left
    before = path.read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk gone")

    result.store_scalar(2.0, "loss")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk gone"):
        result.save()
    monkeypatch.undo()
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["run.result"]


def test_save_errors(torch: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no path"):
        Result.new("result").save()
    with pytest.raises(FileNotFoundError, match="missing"):
        Result.new("result").save(tmp_path / "missing")
    result = Result.new("run", path=tmp_path / "run.result")
    result["callback"] = print
    with pytest.raises(TypeError, match="callback"):
        result.save()
    assert os.listdir(tmp_path) == []


def test_load_missing_file(torch: Any, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.result"):
        Result.load(tmp_path / "nothing.result")


def test_load_legacy_file_of_plain_lists(torch: Any, tmp_path: Path) -> None:
    path = tmp_path / "legacy.result"
    torch.save(
        {
            "loss": [0.5, 0.25, 0.125],
            "steps": [1, 2, 3],
            "q": [[1.0, 2.0], [3.0, 4.0]],
            "tags": ["a", "b"],
            "seed": 3,
        },
        path,
    )
    loaded = Result.load(path)
    assert loaded["loss"].dtype == np.float64
    np.testing.assert_array_equal(loaded["loss"], [0.5, 0.25, 0.125])
    assert loaded["steps"].dtype == np.float64
    assert loaded["q"].shape == (2, 2)
    assert loaded["tags"] == ["a", "b"] and loaded["seed"] == 3


def _legacy_save(torch: Any, data: dict[str, Any], path: Path) -> Path:
    """Write ``data`` as the original ``Result.save`` did: ``torch.save`` of a plain dict."""
    torch.save(dict(data), path)
    return path


def test_legacy_result_with_numpy_values_loads_without_trust(torch: Any, tmp_path: Path) -> None:
    path = _legacy_save(
        torch,
        {
            "loss": [0.5, 0.25, np.float32(0.125)],  # store_scalar of floats and numpy scalars
            "q": [np.array([1.0, 2.0]), np.array([3.0, 4.0])],  # store_array
            "counts": [np.array([1, 2], dtype=np.int32), np.array([3, 4], dtype=np.int32)],
            "masks": [np.array([True, False]), np.array([False, False])],
            "bytes": [np.array([1, 255], dtype=np.uint8)],
            "half": [np.array([0.5], dtype=np.float16)],
            "waves": [np.array([1 + 2j])],
            "best": np.float64(9.5),
            "episodes": np.int64(300),
            "converged": np.bool_(True),
            "matrix": np.eye(2, dtype=np.float32),
            "zero_d": np.array(3.0),
            "tags": ["baseline", "seed-1"],
            "config": {"lr": 0.01, "name": "dqn", "sizes": [64, 64]},
            "note": "plain string",
            "weights": torch.arange(3.0),
        },
        tmp_path / "legacy.result",
    )
    loaded = Result.load(path)  # trusted=False by default
    assert loaded.name == "legacy" and loaded.path == path
    assert loaded["loss"].dtype == np.float64
    np.testing.assert_array_equal(loaded["loss"], [0.5, 0.25, 0.125])
    assert loaded["q"].shape == (2, 2) and loaded["q"].dtype == np.float64
    np.testing.assert_array_equal(loaded["q"], [[1.0, 2.0], [3.0, 4.0]])
    assert loaded["counts"].dtype == np.int32
    np.testing.assert_array_equal(loaded["counts"], [[1, 2], [3, 4]])
    assert loaded["masks"].dtype == np.bool_
    np.testing.assert_array_equal(loaded["masks"], [[True, False], [False, False]])
    np.testing.assert_array_equal(loaded["bytes"], np.array([[1, 255]], dtype=np.uint8))
    assert loaded["half"].dtype == np.float16 and loaded["waves"][0, 0] == 1 + 2j
    assert loaded["best"] == 9.5 and isinstance(loaded["best"], np.float64)
    assert loaded["episodes"] == 300 and isinstance(loaded["episodes"], np.int64)
    assert loaded["converged"] is np.True_
    assert loaded["matrix"].dtype == np.float32
    np.testing.assert_array_equal(loaded["matrix"], np.eye(2))
    assert loaded["zero_d"].shape == () and float(loaded["zero_d"]) == 3.0
    assert loaded["tags"] == ["baseline", "seed-1"] and isinstance(loaded["tags"], list)
    assert loaded["config"]["name"] == "dqn" and loaded["config"]["lr"] == 0.01
    assert loaded["note"] == "plain string"
    assert torch.equal(loaded["weights"], torch.arange(3.0))

    # resaved by pyhermes, the same data loads back unchanged
    out = tmp_path / "out"
    out.mkdir()
    resaved = Result.load(loaded.save(out))
    assert resaved.path == out / "legacy.result"
    np.testing.assert_array_equal(resaved["q"], loaded["q"])


def _as_numpy1_file(source: Path, target: Path) -> Path:
    """Copy a torch file, naming numpy's functions as numpy 1.x pickled them (``numpy.core``)."""
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            new.writestr(item, data)
    return target


def test_legacy_result_written_under_numpy_1_loads(torch: Any, tmp_path: Path) -> None:
    source = _legacy_save(
        torch,
        {"q": [np.array([1.0, 2.0]), np.array([3.0, 4.0])], "best": np.float32(2.5)},
        tmp_path / "numpy2.result",
    )
    path = _as_numpy1_file(source, tmp_path / "numpy1.result")
    assert b"numpy.core.multiarray" in path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DeprecationWarning from numpy.core either
        loaded = Result.load(path)
    np.testing.assert_array_equal(loaded["q"], [[1.0, 2.0], [3.0, 4.0]])
    assert loaded["best"] == np.float32(2.5)


def test_result_needing_other_globals_is_refused(torch: Any, tmp_path: Path) -> None:
    path = _legacy_save(torch, {"names": np.array(["a", "b"]), "loss": [1.0]}, tmp_path / "s.result")
    with pytest.raises(UntrustedFileError, match="trusted=True") as caught:
        Result.load(path)
    assert "s.result" in str(caught.value) and "StrDType" in str(caught.value)
    assert isinstance(caught.value, HermesError) and isinstance(caught.value, ValueError)
    assert Result.load(path, trusted=True)["names"].tolist() == ["a", "b"]


def test_load_ragged_arrays_stay_a_list(torch: Any, tmp_path: Path) -> None:
    result = Result.new("ragged", path=tmp_path / "ragged.result")
    result.store_array([1.0, 2.0], "paths")
    result.store_array([3.0], "paths")
    loaded = Result.load(result.save())
    assert isinstance(loaded["paths"], list) and len(loaded["paths"]) == 2
    np.testing.assert_array_equal(loaded["paths"][1], [3.0])


def test_hostile_pickle_is_not_run(torch: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.result"
    torch.save({"loss": [1.0], "payload": MakesMarker(marker)}, path)

    with pytest.raises(UntrustedFileError, match="trusted=True") as caught:
        Result.load(path)
    assert not marker.exists()
    assert "os.makedirs" in str(caught.value)  # the refused global is named

    # the payload is live: an explicitly trusted load does run it
    Result.load(path, trusted=True)
    assert marker.exists()


def test_load_rejects_non_dict(torch: Any, tmp_path: Path) -> None:
    path = tmp_path / "tensor.result"
    torch.save(torch.zeros(2), path)
    with pytest.raises(ValueError, match="expected a dict"):
        Result.load(path)


# --------------------------------------------------------------------------- plotting


def test_plot_scalar_returns_figure_headless(plt: Any) -> None:
    from matplotlib.figure import Figure

    result = Result.new("result")
    for value in np.linspace(0.0, 1.0, 30):
        result.store_scalar(value, "loss")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # plt.show() on Agg would warn
        fig = result.plot_scalar("loss", smoothing=5)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[0].get_ydata(), result["loss"])
    from pyhermes.plot import smoothen

    np.testing.assert_allclose(ax.lines[1].get_ydata(), smoothen(result["loss"], 5)[0])

    fig2, ax2 = plt.subplots()
    assert result.plot_scalar("loss", show=False, ax=ax2) is fig2
    with pytest.raises(KeyError):
        result.plot_scalar("missing", show=False)


def test_a_runs_legacy_result_loads_without_trust(torch: Any, tmp_path: Path) -> None:
    from datetime import datetime

    from legacy import write_run

    from pyhermes import Experiment

    run_dir = write_run(tmp_path, start=datetime(2024, 1, 1))
    _legacy_save(torch, {"q": [np.array([1.0, 2.0])], "best": np.float64(2.0)},
                 run_dir / f"{run_dir.name}.result")
    result = Experiment.load(run_dir).result
    np.testing.assert_array_equal(result["q"], [[1.0, 2.0]])
    assert result["best"] == 2.0 and result.name == run_dir.name


def test_safe_loads_in_threads_do_not_undo_each_others_allow_list(torch: Any, tmp_path: Path) -> None:
    """torch keeps the allow-list of ``weights_only`` loads in one list for the process:
    one thread leaving its safe load must not take the numpy globals from another
    still loading (that gave a spurious UntrustedFileError), and none of them is left
    in it once every load is done (torch itself adds globals of its own to it
    when a load first imports some of its modules)."""
    from concurrent.futures import ThreadPoolExecutor

    from pyhermes import rundir

    path = _legacy_save(torch, {"values": np.arange(50_000, dtype=np.float64), "n": np.int64(3)},
                        tmp_path / "legacy.result")
    ours = rundir.numpy_safe_globals()

    def load(_: int) -> float:
        return float(rundir.load_torch(path)["values"].sum())

    with ThreadPoolExecutor(max_workers=8) as pool:
        sums = list(pool.map(load, range(400)))
    assert sums == [float(np.arange(50_000).sum())] * 400
    assert [entry for entry in torch.serialization.get_safe_globals() if entry in ours] == []
