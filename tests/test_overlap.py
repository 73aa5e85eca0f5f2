"""The contamination check flags training data that holds a task's validation or test prompts."""

from __future__ import annotations

import json

from lamdagent.config import load_config
from lamdagent.exploration.overlap import describe, overlaps
from lamdagent.exploration.study import Study
from tests.conftest import FAST


def _task(tmp_path, train: list[str], val: list[str], test: list[str]):
    for split, questions in (("train", train), ("val", val), ("test", test)):
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps({"question": q, "answer": "1"}) for q in questions) + "\n")
    task = tmp_path / "planted.yaml"
    task.write_text(f"name: planted\nsource: json:{tmp_path}/{{split}}.jsonl\nextractor: last_number\n")
    return task


def test_a_planted_duplicate_is_flagged(tmp_path):
    questions = [f"How many legs have {n} spiders and a cat?" for n in range(30)]
    train = questions[:20]
    val = questions[20:24] + [train[3].upper() + "  "]  # the same prompt, shouted and padded
    test = questions[25:30]
    task = _task(tmp_path, train, val, test)
    study = Study(load_config("demo", [*FAST, f"tasks=[{task}]", "datasets=[planted]", "data.train_size=20", "data.val_size=5",
                                       "data.test_size=5"]))
    found = overlaps(study)
    assert found == {"planted": {"planted/val": 1}}
    assert describe(found, study) == ["training data 'planted' holds 1/5 planted val prompts"]


def test_disjoint_data_is_not_flagged(tmp_path):
    questions = [f"What is {n} plus {n + 1}?" for n in range(30)]
    task = _task(tmp_path, questions[:20], questions[20:25], questions[25:30])
    study = Study(load_config("demo", [*FAST, f"tasks=[{task}]", "datasets=[planted]", "data.train_size=20", "data.val_size=5",
                                       "data.test_size=5"]))
    assert overlaps(study) == {}
