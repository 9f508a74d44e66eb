"""What music_pipeline needs from its platform beyond Dagster's public API.

``_dagster_internal`` is the one door to Dagster's (and dagster-celery's) private symbols:
the product imports them from there only, each is described there, and
``music_pipeline_tests/test_platform_contract.py`` checks each one's shape against the
installed Dagster (run it before moving the pin in pyproject.toml).
"""
