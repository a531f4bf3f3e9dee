"""Loading torch files (``.pth``/``.result``) safely, with numpy arrays allow-listed.

Owns the numpy globals a safe load accepts and the one process-wide count of
safe loads that keeps them allow-listed (torch keeps its allow-list per
process). torch and numpy are imported only when a file is loaded.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyhermes.rundir._names import PathLike


def numpy_safe_globals() -> list[Any]:
    """The numpy globals that pickled numeric and bool arrays and numpy scalars refer to.

    ``torch.save`` of a numpy array pickles ``_reconstruct(ndarray, shape, dtype)``
    plus its raw bytes, a dtype as ``dtype(code)`` whose state is then set (which
    needs its class, e.g. ``numpy.dtypes.Float64DType``), and a numpy scalar as
    ``scalar(dtype, bytes)``. These build only arrays, dtypes and scalars from
    data, never run other code. numpy 1.x wrote the functions under
    ``numpy.core.multiarray``, numpy 2.x under ``numpy._core.multiarray``: both
    names are listed, bound to the functions of the numpy installed now. Only the
    bool, integer, float and complex dtype classes are listed.
    """
    import numpy as np

    reconstruct = np.empty(0).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    allowed: list[Any] = [(np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(reconstruct, f"{module}._reconstruct"), (scalar, f"{module}.scalar")]
    codes = "?" + np.typecodes["AllInteger"] + np.typecodes["AllFloat"]
    dtype_classes = {type(np.dtype(code)) for code in codes} - {np.dtype}
    allowed += sorted(dtype_classes, key=lambda cls: cls.__name__)
    return allowed


_ALLOWED_LOCK = threading.Lock()
_ALLOWED_LOADS = 0
_ALLOWED_CONTEXT: Any = None


@contextlib.contextmanager
def _numpy_globals_allowed(torch: Any) -> Iterator[None]:
    """Allow-list :func:`numpy_safe_globals` while at least one safe load of this process runs.

    torch keeps that allow-list in one list for the process: one thread leaving
    ``safe_globals`` would take the globals from another thread still loading. So
    the first load in adds them and the last one out removes them.
    """
    global _ALLOWED_LOADS, _ALLOWED_CONTEXT
    with _ALLOWED_LOCK:
        if _ALLOWED_LOADS == 0:
            _ALLOWED_CONTEXT = torch.serialization.safe_globals(numpy_safe_globals())
            _ALLOWED_CONTEXT.__enter__()
        _ALLOWED_LOADS += 1
    try:
        yield
    finally:
        with _ALLOWED_LOCK:
            _ALLOWED_LOADS -= 1
            if _ALLOWED_LOADS == 0:
                _ALLOWED_CONTEXT.__exit__(None, None, None)
                _ALLOWED_CONTEXT = None


def load_torch(path: PathLike, *, map_location: Any = "cpu", trusted: bool = False) -> Any:
    """Load a torch file (``.pth``/``.result``) with ``weights_only=True`` unless ``trusted``.

    Besides tensors and plain Python data, the safe load accepts numpy arrays,
    dtypes and numpy scalars (legacy ``.result`` files hold them): exactly the
    globals of :func:`numpy_safe_globals` are allow-listed with
    ``torch.serialization.safe_globals`` while a safe load of pyhermes runs (in any
    thread of the process).

    Raises:
        FileNotFoundError: the file does not exist.
        UntrustedFileError: the file needs any other global, which ``weights_only``
            refuses; nothing in it was executed. Pass ``trusted=True`` only for files
            you wrote yourself.
        MissingDependencyError: torch is not installed.
    """
    import pickle

    from pyhermes._optional import require
    from pyhermes.errors import UntrustedFileError

    torch = require("torch")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if trusted:
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with _numpy_globals_allowed(torch):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UntrustedFileError(
            f"{path} cannot be loaded safely (weights_only=True refused it: {_refusal(exc)}). "
            "If you trust this file, load it with trusted=True."
        ) from None


_REFUSED_GLOBAL = re.compile(
    r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)|but got <class '([^']+)'>"
)


def _refusal(exc: BaseException) -> str:
    """The global that torch's weights-only unpickler refused, else the first line of its error."""
    text = str(exc)
    match = _REFUSED_GLOBAL.search(text)
    if match is not None:
        return f"it needs {match.group(1) or match.group(2)}, which is not allow-listed"
    return text.splitlines()[0] if text else type(exc).__name__
