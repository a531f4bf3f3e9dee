"""Results of a run: scalar series and array series stored in a dict and saved as a torch file.

A :class:`Result` is a ``dict`` with helpers to record values during a run
(:meth:`Result.store_scalar`, :meth:`Result.store_array`, :meth:`Result.log`),
to save it atomically (:meth:`Result.save`), to load it back safely
(:meth:`Result.load`) and to plot a series (:meth:`Result.plot_scalar`).

The file is a ``torch.save`` of a plain dict, as the legacy hermes runner wrote
it: a scalar series is a list of floats, an array series a list of 1-D arrays.
pyhermes writes only values that ``torch.load(..., weights_only=True)`` accepts
(numpy arrays become nested lists), so what it saves always loads without
unpickling arbitrary objects. torch is needed only to save and load, and
matplotlib only to plot; neither is imported with this module.
"""

from __future__ import annotations

import argparse
import io
import numbers
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from pyhermes._optional import pyplot, require
from pyhermes.errors import RunFormatError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Result", "DEFAULT_NAME", "RESULT_SUFFIX", "TAGS_KEY"]

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_NAME = "result"
"""Name of a result loaded from a file whose name has no stem."""
RESULT_SUFFIX = ".result"
TAGS_KEY = "tags"
"""The key whose list is left as a list on load."""

_LEAF_TYPES = (type(None), bool, int, float, complex, str, bytes)


# --------------------------------------------------------------------------- conversions


def _is_scalar(value: Any) -> bool:
    """True for a number: a Python or numpy number, or a 0-d array or tensor."""
    if isinstance(value, (str, bytes)):
        return False
    if isinstance(value, (numbers.Number, np.generic)):
        return True
    ndim = getattr(value, "ndim", None)
    return ndim == 0


def _to_numpy(value: Any) -> np.ndarray:
    """Return ``value`` as a new numpy array; a torch tensor is detached and moved to the CPU."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.array(value)


def _to_float(key: str, value: Any) -> float:
    """Convert one scalar to ``float``; a ``TypeError`` names ``key`` when it is not a number."""
    if isinstance(value, (str, bytes)) or not _is_scalar(value):
        raise TypeError(
            f"store_scalar(value, {key!r}) needs numbers, got {type(value).__name__} {value!r:.60}"
        )
    if hasattr(value, "detach"):  # a tensor, maybe requiring grad
        value = value.detach()
    return float(value)


def _savable(value: Any, where: str, torch: Any) -> Any:
    """Return ``value`` made of what ``torch.load(weights_only=True)`` accepts.

    numpy arrays become (nested) lists, numpy scalars Python scalars, paths strings and
    tensors detached CPU tensors; dicts, lists, tuples and sets are converted item by item.

    Raises:
        TypeError: ``value`` holds something else; the message names where.
    """
    if isinstance(value, _LEAF_TYPES):
        return value
    if isinstance(value, np.ndarray):
        return _savable(value.tolist(), where, torch)
    if isinstance(value, np.generic):
        return _savable(value.item(), where, torch)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {
            _savable(key, where, torch): _savable(item, f"{where}[{key!r}]", torch)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = [_savable(item, f"{where}[{i}]", torch) for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, set):
        return {_savable(item, where, torch) for item in value}
    raise TypeError(
        f"cannot save {where}: a {type(value).__module__}.{type(value).__qualname__} could only "
        "be loaded back by unpickling arbitrary code; store numbers, strings, lists, dicts, "
        "numpy arrays or tensors instead"
    )


def _row(item: Any) -> np.ndarray | None:
    """Return ``item`` as a 1-D numeric numpy array if it is one (array, tensor or list), else None."""
    if isinstance(item, np.ndarray):
        return item if item.ndim == 1 and item.dtype != object else None
    if hasattr(item, "detach") and getattr(item, "ndim", None) == 1:
        return item.detach().cpu().numpy()
    if isinstance(item, (list, tuple)) and all(_is_scalar(x) for x in item):
        return np.asarray(item)
    return None


def _loaded_value(key: Any, value: Any) -> Any:
    """Turn a loaded scalar series into a 1-D float array and an array series into a 2-D array.

    Every list except the one under ``tags``: a list of numbers becomes a 1-D float64
    array (an empty list an empty one); a list of 1-D arrays (numpy arrays, tensors or
    lists of numbers) of equal length becomes a 2-D array, of unequal lengths a list of
    1-D numpy arrays. Anything else is returned unchanged.
    """
    if key == TAGS_KEY or not isinstance(value, list):
        return value
    if all(_is_scalar(item) for item in value):
        return np.array([float(item) for item in value], dtype=np.float64)
    rows = [_row(item) for item in value]
    if any(row is None for row in rows):
        return value
    if len({row.shape for row in rows}) == 1:  # type: ignore[union-attr]
        return np.stack(rows)  # type: ignore[arg-type]
    return rows


# --------------------------------------------------------------------------- Result


class Result(dict[Any, Any]):
    """The data recorded during a run, saved to and loaded from a torch file.

    A ``dict`` (keys are usually strings) with a :attr:`name` and an optional file
    :attr:`path`. Scalar series are lists of floats (:meth:`store_scalar`), array
    series lists of 1-D numpy arrays (:meth:`store_array`); after :meth:`load` they are
    1-D and 2-D numpy arrays, to which both methods keep appending.

    Attributes:
        name: the result's name; its file is ``<name>.result`` when it has no path yet.
        path: the file the result is saved to by :meth:`save`, or ``None``.
    """

    name: str
    path: Path | None

    def __init__(
        self,
        name: str,
        path: PathLike | None = None,
        dictionary: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None = None,
    ) -> None:
        """Create a result called ``name`` holding ``dictionary`` (copied), bound to the file ``path``.

        The documented constructor ``Result(name, path=None, dictionary=None)``.

        Raises:
            ValueError: ``name`` is empty or holds a path separator.
        """
        super().__init__(dictionary if dictionary is not None else ())
        self.path = Path(path) if path is not None else None
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(f"a result name must be a plain file name, got {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)}, name={self.name!r}, path={self.path!r})"

    @property
    def dictionary(self) -> dict[Any, Any]:
        """Return a plain ``dict`` copy of the result's items (shallow)."""
        return dict(self)

    @property
    def file_name(self) -> str:
        """Return the name of the result's file: that of :attr:`path`, else ``<name>.result``."""
        return self.path.name if self.path is not None else f"{self.name}{RESULT_SUFFIX}"

    # ----------------------------------------------------------------- creating

    @classmethod
    def new(cls, name: str, *, path: PathLike | None = None) -> Result:
        """Return a new, empty result called ``name`` (documented as ``Result.new(name)``).

        ``path``, keyword-only, binds it to a file at once, so that :meth:`save`
        needs no directory.

        Raises:
            ValueError: ``name`` is not a plain file name.
        """
        return cls(name, path)

    @classmethod
    def from_namespace(
        cls,
        name: str,
        namespace: argparse.Namespace | Any,
        *,
        path: PathLike | None = None,
    ) -> Result:
        """Return a new result called ``name`` holding the attributes of ``namespace``.

        Values are copied shallowly from ``vars(namespace)`` (e.g. parsed arguments).
        Note that :meth:`save` only accepts plain data (numbers, strings, paths, lists,
        dicts, arrays, tensors).

        Raises:
            TypeError: ``namespace`` has no ``__dict__``.
            ValueError: ``name`` is not a plain file name.
        """
        return cls(name, path, dict(vars(namespace)))

    # ----------------------------------------------------------------- files

    @classmethod
    def load(cls, path: PathLike, *, trusted: bool = False) -> Result:
        """Load a result file written by pyhermes or by the legacy hermes runner.

        The file is read with ``torch.load(path, map_location="cpu",
        weights_only=not trusted)``. Every list except the one under ``tags`` that
        holds numbers becomes a 1-D float64 numpy array; every list of equally long 1-D
        arrays (numpy arrays, tensors or lists of numbers) becomes a 2-D numpy array
        (a list of 1-D arrays when the lengths differ). The result's :attr:`path` is
        ``path`` and its name the file's stem.

        Args:
            path: the file.
            trusted: allow arbitrary unpickling, which can run code; only for files you
                trust (legacy files holding numpy arrays need it).

        Returns:
            The loaded result.

        Raises:
            FileNotFoundError: the file does not exist (the message names it).
            UntrustedFileError: the file cannot be loaded with ``weights_only=True``;
                nothing in it was run. Pass ``trusted=True`` only for files you trust.
            RunFormatError: the file does not hold a dict.
            MissingDependencyError: torch is not installed.
        """
        from pyhermes.rundir import load_torch

        path = Path(path)
        data = load_torch(path, map_location="cpu", trusted=trusted)
        if not isinstance(data, dict):
            raise RunFormatError(
                f"{path} does not hold a result: expected a dict, found {type(data).__name__}",
                path,
            )
        result = cls(path.stem or DEFAULT_NAME, path)
        for key, value in data.items():
            result[key] = _loaded_value(key, value)
        return result

    def save(self, directory: PathLike | None = None) -> Path:
        """Save the result atomically and return the path written.

        Without ``directory`` the result is written to its :attr:`path`. With
        ``directory`` it is written to ``<directory>/<name>.result`` (as documented);
        a result without a path is then bound to that file, one with a path keeps it
        (the file in ``directory`` is a copy).

        The data goes to a temporary file in the target's folder, is flushed to disk
        and replaces the target with :func:`os.replace`, so the file is always either
        the old or the new complete result. numpy arrays are written as (nested) lists,
        so that :meth:`load` never needs ``trusted=True`` for what this method wrote.

        Args:
            directory: an existing folder to save into, instead of :attr:`path`.

        Returns:
            The path of the file written.

        Raises:
            ValueError: the result has no path and no ``directory`` is given.
            FileNotFoundError: ``directory`` (or the folder of :attr:`path`) does not exist.
            NotADirectoryError: ``directory`` is not a folder.
            TypeError: a value cannot be saved safely (an arbitrary object); the message
                names its key.
            MissingDependencyError: torch is not installed.
        """
        from pyhermes.rundir import atomic_write

        if directory is not None:
            folder = Path(directory)
            if not folder.exists():
                raise FileNotFoundError(f"cannot save result {self.name!r}: no such directory: {folder}")
            if not folder.is_dir():
                raise NotADirectoryError(f"cannot save result {self.name!r}: not a directory: {folder}")
            target = folder / f"{self.name}{RESULT_SUFFIX}"
        elif self.path is not None:
            target = self.path
            if not target.parent.is_dir():
                raise FileNotFoundError(
                    f"cannot save result {self.name!r}: no such directory: {target.parent}"
                )
        else:
            raise ValueError(
                f"result {self.name!r} has no path yet: pass a directory to save(directory), "
                "or create it with a path (Result.new(name, path=...))"
            )

        torch = require("torch")
        payload = {
            _savable(key, "a key", torch): _savable(value, f"result[{key!r}]", torch)
            for key, value in self.items()
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write(target, buffer.getvalue())
        if self.path is None:
            self.path = target
        return target

    # ----------------------------------------------------------------- recording

    def _check_series(self, key: str, kind: str) -> None:
        """Check that a ``kind`` ("scalar" or "array") can be appended under ``key``.

        Raises:
            TypeError: ``key`` holds something other than a list, a 1-D array (scalar
                series) or a 2-D array (array series).
        """
        if key not in self or isinstance(self[key], list):
            return
        current = self[key]
        wanted_ndim = 1 if kind == "scalar" else 2
        if isinstance(current, np.ndarray) and current.ndim == wanted_ndim:
            return
        shape = f" of shape {current.shape}" if isinstance(current, np.ndarray) else ""
        raise TypeError(
            f"cannot store a {kind} under {key!r}: it holds a {type(current).__name__}{shape}, "
            f"not a {kind} series"
        )

    def _series(self, key: str, kind: str) -> list[Any]:
        """Return the list under ``key`` to append to, creating it or turning a loaded array into one.

        Raises:
            TypeError: see :meth:`_check_series`.
        """
        self._check_series(key, kind)
        current = self.get(key)
        if isinstance(current, list) and key in self:
            return current
        if isinstance(current, np.ndarray) and kind == "scalar":
            series: list[Any] = current.astype(np.float64).tolist()
        elif isinstance(current, np.ndarray):
            series = [row.copy() for row in current]
        else:
            series = []
        self[key] = series
        return series

    def store_scalar(self, value: Any, key: str) -> None:
        """Append ``value`` as a float to the scalar series ``key`` (value first, as documented).

        ``value`` is a number (Python, numpy, a 0-d array or a one-element tensor) or an
        iterable of numbers, which are all appended. A new key starts a list; a series
        loaded as a 1-D array is turned back into a list first.

        Raises:
            TypeError: ``value`` is not a number (e.g. a string), or ``key`` holds
                something that is not a scalar series.
            ValueError: ``value`` has more than one dimension.
        """
        ndim = getattr(value, "ndim", None)
        if ndim is None and isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
            ndim = 1
        if ndim is not None and ndim > 1:
            raise ValueError(f"store_scalar(value, {key!r}) needs numbers, got a {ndim}-D value")
        if ndim == 1:
            floats = [_to_float(key, item) for item in value]
        else:
            floats = [_to_float(key, value)]
        self._series(key, "scalar").extend(floats)

    def store_array(self, value: Any, key: str) -> None:
        """Append a copy of the 1-D ``value`` (array, list or tensor) to the array series ``key``.

        Value first, as documented: ``result.store_array([1.0, 2.0], "q_values")``.

        After :meth:`load`, the series is a 2-D numpy array, one row per call (when all
        rows have the same length).

        Raises:
            ValueError: ``array`` is not one-dimensional.
            TypeError: ``key`` holds something that is not an array series.
        """
        values = _to_numpy(value)
        if values.ndim != 1:
            raise ValueError(
                f"store_array(value, {key!r}) needs a 1-D array, got shape {values.shape}"
            )
        self._series(key, "array").append(values)

    def log(self, values: Mapping[str, Any]) -> None:
        """Store every item of ``values``: numbers with :meth:`store_scalar`, others with :meth:`store_array`.

        All values are checked before any is stored, so a bad one stores nothing.

        Raises:
            TypeError: a value is a string, or a key holds a series of the other kind.
            ValueError: a non-number value is not one-dimensional.
        """
        prepared: list[tuple[str, str, Any]] = []
        for key, value in values.items():
            if isinstance(value, (str, bytes)):
                raise TypeError(f"log() stores numbers and arrays, got a string under {key!r}")
            if _is_scalar(value):
                prepared.append((key, "scalar", _to_float(key, value)))
            else:
                array = _to_numpy(value)
                if array.ndim != 1:
                    raise ValueError(f"log() needs a number or a 1-D array under {key!r}, got shape {array.shape}")
                prepared.append((key, "array", array))
        for key, kind, _ in prepared:  # check every target before changing anything
            self._check_series(key, kind)
        for key, kind, item in prepared:
            self._series(key, kind).append(item)

    # ----------------------------------------------------------------- plotting

    def plot_scalar(
        self,
        key: str,
        smoothing: int = 50,
        show: bool = True,
        ax: Axes | None = None,
    ) -> Figure:
        """Plot the scalar series ``key`` and its sliding mean over ``smoothing`` values.

        The raw values are drawn faintly, the mean (see :func:`pyhermes.plot.smoothen`)
        on top, with a legend.

        Args:
            key: the scalar series.
            smoothing: size of the trailing window of the sliding mean.
            show: call ``plt.show()`` afterwards, only if the matplotlib backend is
                interactive (never with the headless Agg backend).
            ax: the axes to draw on; a new figure is made when ``None``.

        Returns:
            The figure drawn on.

        Raises:
            KeyError: there is no ``key``.
            ValueError: the series is not one-dimensional, or ``smoothing`` is below 1.
            MissingDependencyError: matplotlib is not installed.
        """
        from pyhermes.plot import show_if_interactive, smoothen

        values = np.asarray(self[key], dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"plot_scalar needs a scalar series, {key!r} has shape {values.shape}")
        means, _ = smoothen(values, smoothing)
        plt = pyplot()
        if ax is None:
            fig, ax = plt.subplots()
        else:
            fig = ax.figure
        x = np.arange(values.shape[0])
        ax.plot(x, values, alpha=0.3, label=str(key))
        ax.plot(x, means, label=f"{key} (mean of {smoothing})")
        ax.set_xlabel("step")
        ax.set_ylabel(str(key))
        ax.legend()
        if show:
            show_if_interactive(plt)
        return fig
