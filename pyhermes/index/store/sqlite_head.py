"""The SQLite schema at revision 0005, as the migrations build it (generated: do not edit).

A new SQLite index is created by running :data:`STATEMENTS` in one transaction,
without importing Alembic (a first build then starts ~0.2 s sooner). Written by
``python scripts/sqlite_head.py`` from a database that ``alembic upgrade head``
built; tests/test_migrations.py checks that the two still agree.
"""

from __future__ import annotations

#: The revision these statements create.
REVISION = '0005'

#: The statements, in order: tables, indexes and views as SQLite stores them, then the rows
#: of ``alembic_version`` and ``hermes_meta``.
STATEMENTS: tuple[str, ...] = (
    'CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)',
    'CREATE TABLE hermes_run (\n\tid INTEGER NOT NULL, \n\tpath TEXT NOT NULL, \n\tparent TEXT NOT NULL, \n\tidentifier VARCHAR(255) NOT NULL, \n\tscript_name VARCHAR(255), \n\texperiment_name VARCHAR(255), \n\tjob_idx INTEGER, \n\tcommit_hash TEXT, \n\tstart_time DATETIME, \n\tend_time DATETIME, \n\texecution_time FLOAT, \n\tcomments TEXT, \n\tfinished BOOLEAN NOT NULL, \n\tscore_count INTEGER, \n\tscore_first FLOAT, \n\tscore_last FLOAT, \n\tscore_min FLOAT, \n\tscore_max FLOAT, \n\tscore_mean FLOAT, \n\tscore_std FLOAT, \n\tscore_argmax INTEGER, \n\tscore_final_mean FLOAT, \n\tscore_best_window_mean FLOAT, \n\tinfo_size BIGINT, \n\tinfo_mtime_ns BIGINT, \n\targs_size BIGINT, \n\targs_mtime_ns BIGINT, \n\tscores_size BIGINT, \n\tscores_mtime_ns BIGINT, \n\tread_at FLOAT NOT NULL, \n\tsettled BOOLEAN NOT NULL, warnings TEXT, tags_size BIGINT, tags_mtime_ns BIGINT, notes_size BIGINT, notes_mtime_ns BIGINT, \n\tCONSTRAINT pk_hermes_run PRIMARY KEY (id), \n\tCONSTRAINT uq_hermes_run_path UNIQUE (path)\n)',
    'CREATE INDEX ix_hermes_run_identifier ON hermes_run (identifier)',
    'CREATE INDEX ix_hermes_run_start_time ON hermes_run (start_time)',
    'CREATE INDEX ix_hermes_run_score_final_mean ON hermes_run (score_final_mean)',
    'CREATE INDEX ix_hermes_run_settled ON hermes_run (settled)',
    'CREATE TABLE hermes_arg (\n\trun_id INTEGER NOT NULL, \n\tposition INTEGER NOT NULL, \n\traw TEXT NOT NULL, \n\t"key" VARCHAR(255) NOT NULL, \n\tvalue TEXT, \n\tnum FLOAT, \n\tCONSTRAINT pk_hermes_arg PRIMARY KEY (run_id, position), \n\tCONSTRAINT fk_hermes_arg_run_id_hermes_run FOREIGN KEY(run_id) REFERENCES hermes_run (id) ON DELETE CASCADE\n)',
    'CREATE INDEX ix_hermes_arg_raw_run ON hermes_arg (raw, run_id)',
    'CREATE INDEX ix_hermes_arg_key_value ON hermes_arg ("key", value)',
    'CREATE TABLE hermes_info (\n\trun_id INTEGER NOT NULL, \n\t"key" VARCHAR(255) NOT NULL, \n\tvalue TEXT NOT NULL, \n\tCONSTRAINT pk_hermes_info PRIMARY KEY (run_id, "key"), \n\tCONSTRAINT fk_hermes_info_run_id_hermes_run FOREIGN KEY(run_id) REFERENCES hermes_run (id) ON DELETE CASCADE\n)',
    'CREATE INDEX ix_hermes_info_key_value ON hermes_info ("key", value)',
    'CREATE TABLE hermes_problem (\n\tpath TEXT NOT NULL, \n\treason TEXT NOT NULL, \n\tseen_at FLOAT NOT NULL, \n\tCONSTRAINT pk_hermes_problem PRIMARY KEY (path)\n)',
    'CREATE TABLE hermes_folder (\n\tpath TEXT NOT NULL, \n\tmtime_ns BIGINT NOT NULL, \n\tlisted_at FLOAT NOT NULL, \n\tsubfolders TEXT NOT NULL, \n\tCONSTRAINT pk_hermes_folder PRIMARY KEY (path)\n)',
    'CREATE TABLE hermes_meta (\n\t"key" VARCHAR(64) NOT NULL, \n\tvalue TEXT NOT NULL, \n\tCONSTRAINT pk_hermes_meta PRIMARY KEY ("key")\n)',
    'CREATE VIEW runs AS\nSELECT\n    id,\n    path,\n    identifier,\n    script_name,\n    experiment_name,\n    job_idx,\n    commit_hash,\n    start_time,\n    end_time,\n    execution_time,\n    comments,\n    finished,\n    score_count AS "count",\n    score_first AS "first",\n    score_last AS "last",\n    score_min AS "min",\n    score_max AS "max",\n    score_mean AS "mean",\n    score_std AS "std",\n    score_argmax AS "argmax",\n    score_final_mean AS "final_mean",\n    score_best_window_mean AS "best_window_mean"\nFROM hermes_run',
    'CREATE VIEW run_args AS\nSELECT run_id, "position", "key", "value", num, raw\nFROM hermes_arg',
    'CREATE VIEW run_info AS\nSELECT run_id, "key", "value"\nFROM hermes_info',
    'CREATE INDEX ix_hermes_arg_key_num_value_run ON hermes_arg ("key", num, value, run_id)',
    'CREATE INDEX ix_hermes_arg_run_key_num_value ON hermes_arg (run_id, "key", num, value)',
    'CREATE INDEX ix_hermes_run_parent_path ON hermes_run (parent, path)',
    'CREATE TABLE hermes_tag (\n\trun_id INTEGER NOT NULL, \n\ttag VARCHAR(255) NOT NULL, \n\tCONSTRAINT pk_hermes_tag PRIMARY KEY (run_id, tag), \n\tCONSTRAINT fk_hermes_tag_run_id_hermes_run FOREIGN KEY(run_id) REFERENCES hermes_run (id) ON DELETE CASCADE\n)',
    'CREATE INDEX ix_hermes_tag_tag_run ON hermes_tag (tag, run_id)',
    'CREATE TABLE hermes_note (\n\trun_id INTEGER NOT NULL, \n\tposition INTEGER NOT NULL, \n\ttime DATETIME, \n\ttext TEXT NOT NULL, \n\tCONSTRAINT pk_hermes_note PRIMARY KEY (run_id, position), \n\tCONSTRAINT fk_hermes_note_run_id_hermes_run FOREIGN KEY(run_id) REFERENCES hermes_run (id) ON DELETE CASCADE\n)',
    'CREATE VIEW run_tags AS\nSELECT run_id, tag\nFROM hermes_tag',
    'CREATE VIEW run_notes AS\nSELECT run_id, "time", "text"\nFROM hermes_note',
    'INSERT INTO alembic_version ("version_num") VALUES (\'0005\')',
    'INSERT INTO hermes_meta ("key", "value") VALUES (\'schema_generation\', \'5\')',
)
