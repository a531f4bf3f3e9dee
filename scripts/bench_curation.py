"""Benchmark the curation commands: ``hermes gc`` listing, archiving and unarchiving, tagging.

Usage::

    python scripts/bench_curation.py [--sizes 10000,100000] [--archive-size 10000]
                                     [--repeat 3] [--cache DIR] [--rows gc,archive,tag]

Corpora come from ``scripts/make_corpus.py`` through the cache of ``scripts/bench.py``
(``$XDG_CACHE_HOME/pyhermes-bench/corpus-N``, generated on first use). For each size of
``--sizes`` it times, as medians of ``--repeat`` rounds, the garbage-collection listing
on the corpus's sweep folder (indexed first, not timed): the library call
(:func:`pyhermes.curation.gc_candidates` on an open catalog) and the whole
``hermes gc ROOT --format json`` process (which syncs quickly first). The corpus has 2%
crashed runs, so the index answers with 2% of the runs and only those are read on disk.

Archiving is measured on a hard-linked copy of the ``--archive-size`` corpus (archiving
renames directories, so the cache is never changed), aged an hour and indexed: moving
every run to ``.archive`` (:func:`~pyhermes.curation.archive_runs`, one rename each, then
one ``forget_runs``), and back (:func:`~pyhermes.curation.unarchive_runs`, then one
``store_runs``); ``hermes archive --yes`` as a whole process. Tagging is measured on
another linked copy (flushed to disk first): tagging every run by a query (``add_tags``:
a ``hermes.tags`` written per run, the filesystem flushed once, then one write-through)
and untagging them; each round's time goes to stderr. ``--rows`` picks the rows measured
(``--rows tag`` only the tagging). It prints a Markdown table; timings are never
asserted by tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import age, cache_dir, corpus, hermes_command, linked_copy  # noqa: E402

#: Matches every run of the corpus (all start after 2023-09-01).
EVERY_RUN = "start_time > 2000-01-01"


def median_of(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def measure_gc(folder: Path, repeat: int) -> dict[str, float | int]:
    """The gc listing on ``folder`` (indexed first): library call and whole process."""
    from pyhermes import Catalog
    from pyhermes.curation import gc_candidates

    # A lab's tree: runs finished long ago, settled in the index (a corpus indexed within the
    # settle window of its generation stays unsettled until a sync writes, and every quick
    # check would stat all its files).
    age(folder)
    catalog = Catalog.open(folder)
    found = gc_candidates(folder, index=catalog)
    library = median_of([timed(lambda: gc_candidates(folder, index=catalog)) for _ in range(repeat)])
    command = [hermes_command(), "gc", str(folder), "--format", "json"]
    process = median_of([
        timed(lambda: subprocess.run(command, capture_output=True, check=True)) for _ in range(repeat)
    ])
    return {"runs": catalog.count(), "candidates": len(found), "library": library, "process": process}


def measure_archive(folder: Path, repeat: int, work: Path) -> dict[str, float | int]:
    """Archive every run of a linked copy of ``folder`` and back, ``repeat`` times."""
    from pyhermes import Catalog
    from pyhermes.curation import archive_runs, archived_runs, unarchive_runs

    root = work / "copy"
    linked_copy(folder, root)
    age(root)
    catalog = Catalog.open(root)
    runs = catalog.count()
    archiving, unarchiving, processes = [], [], []
    command = [hermes_command(), "archive", str(root), f"--where={EVERY_RUN}", "--yes", "--format", "json"]
    for _ in range(repeat):
        started = time.perf_counter()
        moved = archive_runs(root, Catalog.open(root).find(), index=catalog)
        archiving.append(time.perf_counter() - started)
        assert all(item.refused is None for item in moved), moved[:3]
        started = time.perf_counter()
        back = unarchive_runs(root, archived_runs(root), index=catalog)
        unarchiving.append(time.perf_counter() - started)
        assert all(item.refused is None for item in back), back[:3]
        processes.append(timed(lambda: subprocess.run(command, capture_output=True, check=True)))
        unarchive_runs(root, archived_runs(root), index=catalog)
    assert Catalog.open(root).count() == runs
    return {"runs": runs, "archive": median_of(archiving), "unarchive": median_of(unarchiving),
            "process": median_of(processes)}


def measure_tagging(folder: Path, repeat: int, work: Path) -> dict[str, float | int]:
    """Tag every run of a linked copy of ``folder`` by a query and untag them, ``repeat`` times.

    The copy is flushed to disk before the first round, so no round pays for writing it.
    """
    from pyhermes import Catalog, Experiment

    root = work / "tagged"
    linked_copy(folder, root)
    age(root)
    catalog = Catalog.open(root)
    runs = catalog.count()
    os.sync()
    tagging, untagging = [], []
    for round_number in range(repeat):
        tag = f"bench-{round_number}"
        chosen = Experiment.load_all(root).where(EVERY_RUN)
        tagging.append(timed(lambda: chosen.add_tags(tag)))  # noqa: B023 (called at once)
        assert Experiment.load_all(root).where(f"tag = {tag}") and catalog.count(f"tag = {tag}") == runs
        untagging.append(timed(lambda: Experiment.load_all(root).where(f"tag = {tag}").remove_tags(tag)))  # noqa: B023
    return {"runs": runs, "tag": median_of(tagging), "untag": median_of(untagging),
            "tags": tagging, "untags": untagging}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="corpus sizes of the gc listing")
    parser.add_argument("--archive-size", type=int, default=10000, help="corpus size archived")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--rows", default="gc,archive,tag",
                        help="which rows to measure: gc, archive, tag (comma-separated)")
    args = parser.parse_args(argv)
    wanted = {part.strip() for part in args.rows.split(",") if part.strip()}
    cache = cache_dir(args.cache)
    rows = []
    for size in [int(part) for part in args.sizes.split(",") if part.strip()] if "gc" in wanted else []:
        result = measure_gc(corpus(cache, size), args.repeat)
        rows.append((f"gc listing ({result['candidates']} candidates), library call", result["runs"],
                     result["library"], "2 s" if size >= 100000 else ""))
        rows.append(("`hermes gc ROOT --format json` (whole process, quick sync)", result["runs"],
                     result["process"], "2 s" if size >= 100000 else ""))
    if args.archive_size and wanted & {"archive", "tag"}:
        work = Path(tempfile.mkdtemp(prefix="bench-curation-"))
        try:
            if "archive" in wanted:
                result = measure_archive(corpus(cache, args.archive_size), args.repeat, work)
                rows.append(("archive every run (`archive_runs`: renames + one `forget_runs`)", result["runs"],
                             result["archive"], "10 s"))
                rows.append(("unarchive every run (`unarchive_runs`: renames + one `store_runs`)", result["runs"],
                             result["unarchive"], ""))
                rows.append(("`hermes archive ROOT --where=... --yes` (whole process)", result["runs"],
                             result["process"], "10 s"))
            if "tag" in wanted:
                result = measure_tagging(corpus(cache, args.archive_size), args.repeat, work)
                rows.append(("tag every run by query (`load_all(...).where(...).add_tags(tag)`)", result["runs"],
                             result["tag"], "5 s"))
                rows.append(("untag them (`where(\"tag = ...\").remove_tags(tag)`)", result["runs"],
                             result["untag"], ""))
                print("tagging rounds: " + ", ".join(f"{seconds:.2f}" for seconds in result["tags"])
                      + " s; untagging: " + ", ".join(f"{seconds:.2f}" for seconds in result["untags"]) + " s",
                      file=sys.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"Curation, medians of {args.repeat} rounds, {os.cpu_count()} cores; "
          f"command: `python scripts/bench_curation.py --sizes {args.sizes} --archive-size {args.archive_size}"
          f"{'' if wanted == {'gc', 'archive', 'tag'} else ' --rows ' + args.rows}`\n")
    print("| what | runs | median | target |")
    print("|---|---:|---:|---:|")
    for what, runs, seconds, target in rows:
        print(f"| {what} | {runs:,} | {seconds * 1000:,.0f} ms | {target} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
