"""The cyclic garbage collector of a long-running server or worker process.

Each report decodes into tens of thousands of lists, dicts and strings that live for one
request. Python's default young-generation threshold (700 new container objects on CPython
3.9-3.12, 2,000 on 3.13) starts several collections while one report is decoded, and every
collection promotes what is still being built, so the older generations fill and a full collection
walks the whole heap (the app, its caches, the call-path index) every dozen or so reports.
:func:`tune` raises the young threshold and moves the objects made at start-up, which live as long
as the process, out of the collector's sight. The figures are in ``benchmarks/server/README.md``.
"""

from __future__ import annotations

import gc


def tune(young_threshold: int) -> None:
    """Collect the young generation after ``young_threshold`` new container objects (0: Python's
    own threshold, left as it is), and freeze the objects made so far (``gc.freeze``): call once
    the app is built, before serving."""
    if young_threshold > 0:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, old)
    gc.freeze()
