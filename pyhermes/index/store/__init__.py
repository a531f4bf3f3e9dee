"""Where the index lives and how it is opened: location, lock file, SQLite files and their damage, engines, schema."""
