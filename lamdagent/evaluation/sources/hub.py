"""`hf:<dataset id>`: the Hugging Face hub through `datasets` (needs network; `hf_config`, and
`hf_splits` mapping train/val/test to the dataset's split expressions); `json:<path>`: a local
JSON/JSONL file per split (`{split}` in the path is substituted)."""

from __future__ import annotations

from pathlib import Path

from lamdagent.errors import UserError
from lamdagent.evaluation.sources.base import SOURCES, Source


def hub_rows(ref: str, spec, split: str, n: int, seed: int) -> list[dict]:
    import datasets

    data = datasets.load_dataset(ref, spec.hf_config, split=spec.hf_splits[split])
    return [dict(row) for row in data.select(range(min(n, len(data))))]


def json_rows(ref: str, spec, split: str, n: int, seed: int) -> list[dict]:
    import datasets

    path = Path(ref.replace("{split}", split)).expanduser()
    if not path.exists():
        raise UserError(f"task {spec.name!r}: data file {str(path)!r} does not exist")
    data = datasets.load_dataset("json", data_files=str(path), split="train")
    return [dict(row) for row in data.select(range(min(n, len(data))))]


SOURCES.add("hf", Source("hf:<dataset id>", hub_rows))
SOURCES.add("json", Source("json:<path>", json_rows))
