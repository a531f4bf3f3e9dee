"""Answering from the index: filter objects, SQL builders, the filter grammar, DataFrames from SQL."""
