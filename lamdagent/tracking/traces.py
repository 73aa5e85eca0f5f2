"""The agent's and the judge's LLM calls as MLflow traces, through MLflow's public tracing API.

One trace per decision (root span `decide`, AGENT), per memory rewrite (`remember`, AGENT) and per
judge call (`judge`, LLM); a span per request inside it (CHAT_MODEL): the messages as inputs, the
reply as outputs, the model, the attempt, the latency, the token counts where the server (or the
local tokenizer) gives them, and the error of a failed attempt. A trace is linked to its action's
run (metadata `mlflow.sourceRun`, which the run's Traces tab and `search_traces(run_id=...)` read)
and lives in the run's experiment; a memory trace also names the run's LoggedModel
(`mlflow.modelId`).

Agent and judge code call `span(...)`: it records only under a trace opened here (by the loop), or,
for a judge call, while an evaluation is `linked` to a run; anywhere else it does nothing, so a
policy used outside an exploration writes nothing. Tracing never breaks an exploration: the first
failure of the tracing machinery prints one line, and tracing stays off for the rest of the process.
"""

from __future__ import annotations

import os
import random
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

_state = {"enabled": True, "failed": False}
_ROOT: ContextVar[bool] = ContextVar("lamdagent_trace_root", default=False)  # a trace opened here is active
_LINK: ContextVar[tuple[str, str] | None] = ContextVar("lamdagent_trace_link", default=None)  # (run id, experiment id)


_RANDOM = {"state": random.Random(int.from_bytes(os.urandom(16), "big")).getstate()}


@contextmanager
def _own_randomness() -> Iterator[None]:
    """MLflow draws trace and span ids from Python's global `random`, which training seeds: the same
    ids would come back in every iteration (and a trace would overwrite another), and drawing them
    would shift the seeded stream. Ids are drawn from this module's own stream instead."""
    outer = random.getstate()
    random.setstate(_RANDOM["state"])
    try:
        yield
    finally:
        _RANDOM["state"] = random.getstate()
        random.setstate(outer)


def configure(enabled: bool) -> None:
    """Switch tracing on or off for this process (config `agent.trace`)."""
    _state["enabled"] = bool(enabled)


def enabled() -> bool:
    return _state["enabled"] and not _state["failed"]


def _give_up(err: BaseException) -> None:
    """Tracing failed: say so once, and trace nothing more in this process."""
    if not _state["failed"]:
        _state["failed"] = True
        print(f"tracing off: MLflow could not record an agent trace ({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}); "
              "the exploration goes on without traces", file=sys.stderr)


class Span:
    """A handle on one span; every method is safe (a tracing failure never reaches the caller).
    The handle of a call that is not traced does nothing."""

    def __init__(self, live=None):
        self._live = live
        self._started = time.perf_counter()

    @property
    def recording(self) -> bool:
        return self._live is not None

    @property
    def trace_id(self) -> str | None:
        return self._live.trace_id if self._live is not None else None

    def _safe(self, fn, *args) -> None:
        if self._live is None:
            return
        try:
            fn(*args)
        except Exception as err:  # noqa: BLE001 - tracing must never break the caller
            _give_up(err)
            self._live = None

    def inputs(self, inputs: Any) -> None:
        self._safe(lambda: self._live.set_inputs(inputs))

    def outputs(self, outputs: Any) -> None:
        self._safe(lambda: self._live.set_outputs(outputs))

    def attributes(self, **attributes: Any) -> None:
        self._safe(lambda: self._live.set_attributes({k: v for k, v in attributes.items() if v is not None}))

    def usage(self, input_tokens: int | None, output_tokens: int | None) -> None:
        """Token counts, under MLflow's key (the trace sums them; the UI shows them)."""
        if input_tokens is None and output_tokens is None:
            return
        from mlflow.tracing.constant import SpanAttributeKey, TokenUsageKey

        counts = {TokenUsageKey.INPUT_TOKENS: int(input_tokens or 0), TokenUsageKey.OUTPUT_TOKENS: int(output_tokens or 0)}
        counts[TokenUsageKey.TOTAL_TOKENS] = sum(counts.values())
        self._safe(lambda: self._live.set_attribute(SpanAttributeKey.CHAT_USAGE, counts))

    def fail(self, error: BaseException | str) -> None:
        """The call failed: status ERROR, the error as an exception event (message only)."""
        self._safe(lambda: self._live.record_exception(error if isinstance(error, Exception) else Exception(str(error))))

    def link(self, run_id: str) -> None:
        """Link the trace this span is the root of to a run (only while the trace is open)."""
        import mlflow
        from mlflow.tracing.constant import TraceMetadataKey

        self._safe(lambda: mlflow.update_current_trace(metadata={TraceMetadataKey.SOURCE_RUN: run_id}))

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000


NO_SPAN = Span()


@contextmanager
def _span(name: str, kind: str, *, experiment_id: str | None = None, run_id: str | None = None, inputs: Any = None,
          attributes: dict | None = None, tags: dict[str, str] | None = None, metadata: dict[str, str] | None = None) -> Iterator[Span]:
    try:
        import mlflow
        from mlflow.entities.trace_location import MlflowExperimentLocation

        destination = MlflowExperimentLocation(experiment_id) if experiment_id else None
        manager = mlflow.start_span(name, span_type=kind, attributes={k: v for k, v in (attributes or {}).items() if v is not None},
                                    trace_destination=destination, run_id=run_id)
        with _own_randomness():
            live = manager.__enter__()
        handle = Span(live if getattr(live, "trace_id", None) else None)
        if inputs is not None:
            handle.inputs(inputs)
        if tags or metadata:
            handle._safe(lambda: mlflow.update_current_trace(tags=tags, metadata=metadata))
    except Exception as err:  # noqa: BLE001
        _give_up(err)
        yield NO_SPAN
        return
    root = _ROOT.set(True)
    try:
        yield handle
    except BaseException as err:  # MLflow records it on the span (status ERROR, an exception event)
        handle.attributes(latency_ms=round(handle.elapsed_ms(), 1))
        try:
            manager.__exit__(type(err), err, err.__traceback__)
        except BaseException as failure:  # noqa: BLE001 - the span's context re-raises the caller's error
            if failure is not err:
                _give_up(failure)
        raise
    else:
        handle.attributes(latency_ms=round(handle.elapsed_ms(), 1))
        try:
            manager.__exit__(None, None, None)
        except Exception as failure:  # noqa: BLE001
            _give_up(failure)
    finally:
        _ROOT.reset(root)


@contextmanager
def trace(name: str, *, experiment_id: str, run_id: str | None = None, kind: str = "AGENT", inputs: Any = None,
          tags: dict[str, str] | None = None, model_id: str | None = None) -> Iterator[Span]:
    """A new trace in `experiment_id`, linked to `run_id` (or later, with `Span.link`) and to the
    LoggedModel `model_id`; spans opened inside it are its children. Does nothing when tracing is off."""
    if not enabled():
        yield NO_SPAN
        return
    metadata = {"mlflow.modelId": model_id} if model_id else None
    with _span(name, kind, experiment_id=experiment_id, run_id=run_id, inputs=inputs, tags=tags, metadata=metadata) as handle:
        yield handle


@contextmanager
def span(name: str, kind: str = "CHAT_MODEL", *, inputs: Any = None, **attributes: Any) -> Iterator[Span]:
    """One call (a request to the endpoint, a local generation, a judgement) as a span of the open
    trace; outside any trace, a trace of its own when an evaluation is linked to a run (the judge);
    else nothing. An exception raised inside marks the span failed and goes on."""
    if not enabled():
        yield NO_SPAN
        return
    if _ROOT.get():
        with _span(name, kind, inputs=inputs, attributes=attributes) as handle:
            yield handle
        return
    link = _LINK.get()
    if link is None:
        yield NO_SPAN
        return
    run_id, experiment_id = link
    with _span(name, kind, experiment_id=experiment_id, run_id=run_id, inputs=inputs, attributes=attributes) as handle:
        yield handle


@contextmanager
def linked(run_id: str, experiment_id: str) -> Iterator[None]:
    """Calls traced in this block (the judge's, while a model is evaluated) belong to `run_id`."""
    token = _LINK.set((run_id, experiment_id))
    try:
        yield
    finally:
        _LINK.reset(token)


def flush() -> None:
    """Write the traces still queued (MLflow exports them in the background)."""
    if not enabled():
        return
    try:
        import mlflow

        mlflow.flush_trace_async_logging()
    except Exception as err:  # noqa: BLE001
        _give_up(err)
