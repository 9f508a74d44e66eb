"""Domain logic in plain Python. Nothing in this package imports Dagster.

If a function here needs a Dagster context to be tested, it is in the wrong layer.
"""
