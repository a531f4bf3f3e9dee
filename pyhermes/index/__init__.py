"""The SQL index of run directories (SQLite by default, PostgreSQL optional).

Storage contract: the run directories are the source of truth; the index is a
cache that can be rebuilt from them at any time. Nothing in this package writes
to or deletes from a run directory. All SQL of pyhermes lives in this package.
"""
