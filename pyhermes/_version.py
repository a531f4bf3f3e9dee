"""The version of pyhermes (one place; the package and the commands read it here)."""

__version__ = "0.1.0"
