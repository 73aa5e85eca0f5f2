"""Named fault hooks for crash testing: `checkpoint("after_build")` kills the process with SIGKILL
when `LAMDAGENT_FAULT=after_build` (the first time it is reached) or `after_build:3` (the third
time) is set. Unset, a checkpoint is one environment lookup.

Hooks: train_step (a training callback step), after_build (an action's model is written),
after_merge, eval (an evaluation batch), before_log_model, log_model (artifacts stored, model not
yet finalised), after_log_model, agent_call (an agent reply received), memory_update (the memory
rewritten, not yet logged), before_finish (memory logged, run not yet finished), after_finish (the
run finished, the exploration's metrics for the iteration not yet logged).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

HOOKS = ("train_step", "after_build", "after_merge", "eval", "before_log_model", "log_model", "after_log_model",
         "agent_call", "memory_update", "before_finish", "after_finish")
ENV = "LAMDAGENT_FAULT"
_hits: Counter = Counter()


def parse(spec: str) -> tuple[str, int]:
    """`hook` or `hook:n` -> (hook, n)."""
    name, _, count = spec.partition(":")
    if name not in HOOKS:
        raise ValueError(f"{ENV}={spec!r}: unknown hook {name!r}; expected one of {list(HOOKS)}")
    return name, int(count or 1)


def checkpoint(name: str) -> None:
    """Kill this process now if `$LAMDAGENT_FAULT` names this hook (and this is its n-th hit)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    target, count = parse(spec)
    if name != target:
        return
    _hits[name] += 1
    if _hits[name] == count:
        os.kill(os.getpid(), signal.SIGKILL)
