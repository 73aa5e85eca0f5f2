"""The paper's tables as rows, written as markdown (best values in bold) and CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[dict]  # column -> value (str or float)
    best: tuple[str, ...] = ()  # numeric columns whose maximum is marked

    def markdown(self) -> str:
        maxima = {}
        for column in self.best:
            values = [r[column] for r in self.rows if isinstance(r.get(column), float) and r[column] == r[column]]  # NaN skipped
            if len(set(values)) > 1:  # a tie of every row marks nothing
                maxima[column] = max(values)
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |", "|" + "|".join("---" for _ in self.columns) + "|"]
        for row in self.rows:
            cells = []
            for column in self.columns:
                value = row.get(column, "")
                text = f"{value:.3f}" if isinstance(value, float) else str(value)
                if column in maxima and isinstance(value, float) and maxima[column] is not None and value == maxima[column]:
                    text = f"**{text}**"
                cells.append(text)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, extrasaction="ignore")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        return out.getvalue()


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
