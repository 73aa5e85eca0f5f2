"""Tables of results read from the tracking store."""

from __future__ import annotations

from rich.table import Table

from lamdagent.tracking import Kind, Record


def top_records(records: list[Record], k: int = 10) -> list[Record]:
    """The k best produced models by validation score (seeds included, repeats of a model once)."""
    scored = [r for r in records if r.done and r.score is not None]
    unique: dict[str, Record] = {}
    for record in scored:
        unique.setdefault(record.model_id or record.run_id, record)
    return sorted(unique.values(), key=lambda r: r.score, reverse=True)[:k]


def top_table(records: list[Record], tasks: list[str], k: int = 10, title: str = "Top pipelines (validation)") -> Table:
    table = Table(title=title, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("model")
    table.add_column("score", justify="right")
    for task in tasks:
        table.add_column(task, justify="right")
    table.add_column("pipeline", overflow="fold")
    best = {task: max((r.scores.get(task, 0.0) for r in records if r.score is not None), default=0.0) for task in tasks}
    for rank, record in enumerate(top_records(records, k), 1):
        cells = []
        for task in tasks:
            value = record.scores.get(task)
            text = "-" if value is None else f"{value:.2f}"
            cells.append(f"[bold green]{text}[/]" if value is not None and value == best[task] and value > 0 else text)
        where = "seed" if record.kind == Kind.SEED else f"it {record.iteration}"
        table.add_row(str(rank), f"{record.name} ({where})", f"{record.score:.3f}", *cells, record.pipeline)
    return table
