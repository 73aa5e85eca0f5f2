"""Rich progress for long work, and quiet third-party libraries."""

from __future__ import annotations

import logging
import os
import warnings

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


def quiet_libraries() -> None:
    """Silence the progress bars and chatter of datasets, transformers, mergekit and MLflow."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore")
    import datasets
    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for name in ("mlflow", "mergekit", "alembic", "httpx", "urllib3", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)


class Display:
    """Iteration k/N, the current action, and a bar for its training steps or evaluation."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._overall = None
        self._step = None
        self._said: set[str] = set()

    def __enter__(self) -> Display:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def overall(self, description: str, total: int, completed: int = 0) -> None:
        if self._overall is None:
            self._overall = self.progress.add_task(description, total=total, completed=completed)
        else:
            self.progress.update(self._overall, description=description, total=total, completed=completed)

    def advance_overall(self) -> None:
        if self._overall is not None:
            self.progress.advance(self._overall)

    def step(self, description: str, total: int | None = None) -> None:
        """Start (or restart) the bar of the current step."""
        if self._step is not None:
            self.progress.remove_task(self._step)
        self._step = self.progress.add_task(f"  {description}", total=total)

    def update_step(self, completed: int, total: int | None = None) -> None:
        if self._step is not None:
            self.progress.update(self._step, completed=completed, total=total)

    def advance_step(self, amount: int = 1) -> None:
        if self._step is not None:
            self.progress.advance(self._step, amount)

    def done_step(self) -> None:
        if self._step is not None:
            self.progress.remove_task(self._step)
            self._step = None

    def log(self, message: str) -> None:
        self.progress.console.print(message)

    def log_once(self, key: str, message: str) -> None:
        """`log`, the first time this display is given `key`: a degraded mode said once, not at every step."""
        if key not in self._said:
            self._said.add(key)
            self.log(message)
