"""History: every run's headline numbers in an embedded SQLite index, for trends, drift checks and the viewer.

The run folders stay the source of truth; ``reports/index.sqlite`` is a cache of them that is updated when a
run ends, rebuilt from the folders on demand (``harness history --rebuild``) and whenever it is missing or
corrupt. Modules: ``gitinfo`` (commit/branch/dirty for the manifest), ``digest`` (one run folder → rows),
``index`` (the SQLite file), ``drift`` (trend and latest-run tests), ``table`` (the terminal view).

This package's ``__init__`` imports nothing heavy: the pipeline imports ``gitinfo`` on every run.
"""
