"""The viewer: a static, self-contained site over the history index and the run folders.

``build_site`` writes ``index.html`` and its script next to ``data/`` (one small JSON file per page, and the
cases of a run in pages of ``CASES_PER_PAGE``), so opening a large run reads its summary and one page of cases,
never the whole run. ``serve`` serves the folder on 127.0.0.1 and computes a comparison the site does not
hold yet on first request. Modules: ``build`` (the site), ``rundata`` (a run's pages), ``comparedata`` (two
runs or two variants), ``wordiff`` (word-level diff), ``trends`` (a suite over runs), ``serve``.
"""
