"""The example queries of ``docs/schema.md``, one click away on the SQL page (a test keeps them equal)."""

from __future__ import annotations

#: (title, SQL) of each example of ``docs/schema.md``, in its order.
EXAMPLE_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "The ten best runs by final mean",
        "SELECT identifier, final_mean, max, count\nFROM runs\nWHERE final_mean IS NOT NULL\nORDER BY final_mean DESC\nLIMIT 10\n",
    ),
    (
        "Best final_mean per -lr among --doubledqn runs",
        "SELECT lr.num AS lr, MAX(r.final_mean) AS best_final_mean, COUNT(*) AS runs\nFROM runs AS r\nJOIN run_args AS lr ON lr.run_id = r.id AND lr.key = '-lr'\nWHERE r.id IN (SELECT run_id FROM run_args WHERE raw = '--doubledqn')\nGROUP BY lr.num\nORDER BY lr.num\n",
    ),
    (
        "Mean and spread over seeds of each (-lr, -gamma) pair",
        "SELECT lr.num AS lr, gamma.num AS gamma,\n       AVG(r.final_mean) AS mean_final, MIN(r.final_mean) AS worst, COUNT(*) AS seeds\nFROM runs AS r\nJOIN run_args AS lr ON lr.run_id = r.id AND lr.key = '-lr'\nJOIN run_args AS gamma ON gamma.run_id = r.id AND gamma.key = '-gamma'\nGROUP BY lr.num, gamma.num\nORDER BY mean_final DESC\n",
    ),
    (
        "Runs that crashed or are still running (no end_time), newest first",
        "SELECT identifier, start_time, count\nFROM runs\nWHERE NOT finished\nORDER BY start_time DESC\n",
    ),
    (
        "Runs per commit, with their time span",
        "SELECT commit_hash, COUNT(*) AS runs, MIN(start_time) AS first_run, MAX(start_time) AS last_run\nFROM runs\nGROUP BY commit_hash\nORDER BY runs DESC\n",
    ),
    (
        "Runs whose comments mention a word, with every hermes.info key they have",
        "SELECT r.identifier, i.key, i.value\nFROM runs AS r\nJOIN run_info AS i ON i.run_id = r.id\nWHERE r.comments LIKE '%lr%'\nORDER BY r.identifier, i.key\n",
    ),
)
