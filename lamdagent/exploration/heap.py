"""Python's cycle collector in a long-lived process.

After the libraries are imported and a first step has run, the process holds ~750,000 objects
that live as long as it does (modules, classes, MLflow's and transformers' caches). Each full
collection scans all of them: 0.45 s on this machine, once every ~20 demo merges, which is about
as much time as the tool's own bookkeeping per merge. `settle` collects once, then freezes what
survived (gc.freeze): full collections then scan only what later steps create. Frozen objects
are still freed by reference counting; only a cycle among them would never be collected, and the
collection just before freezing leaves none.
"""

from __future__ import annotations

import gc

_settled = False


def settle() -> None:
    """Collect, then move every surviving object out of the collector's reach; once per process."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
