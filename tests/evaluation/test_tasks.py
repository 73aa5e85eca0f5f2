import json

import pytest

from lamdagent.errors import UserError
from lamdagent.evaluation.evaluator import task_weights, weighted_score
from lamdagent.evaluation.tasks import Task, TaskSpec, load_task


def test_synthetic_splits_are_reproducible_and_distinct():
    task = load_task("arith")
    train, again = task.examples("train", 20, seed=0), task.examples("train", 20, seed=0)
    assert train == again
    assert task.examples("test", 20, seed=0) != train
    assert task.examples("train", 20, seed=1) != train


@pytest.mark.parametrize("name, generation, reward", [("arith", " 12", 1.0), ("choice", " [[B]]", 1.0), ("facts", " the x", 0.0)])
def test_each_demo_task_scores_its_own_format(name, generation, reward):
    task = load_task(name)
    gold = {"arith": "12", "choice": "B", "facts": ("Velm",)}[name]
    assert task.score(generation, gold)[1] == reward


def test_json_task_from_local_files(tmp_path):
    for split in ("train", "val", "test"):
        rows = [{"q": f"{split} {i}+1", "a": str(i + 1)} for i in range(5)]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    spec = TaskSpec(name="mine", source=f"json:{tmp_path}/{{split}}.jsonl", prompt="Q: {{ q }}\nA:", target=" {{ a }}",
                    gold="{{ a }}", extractor="last_number", metric="exact_match")
    examples = Task(spec).examples("val", 3)
    assert examples[0].prompt == "Q: val 0+1\nA:" and examples[0].gold == "1"
    with pytest.raises(UserError, match="has 5 examples, 10 requested"):
        Task(spec).examples("test", 10)


def test_task_definition_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="unknown task 'nope'"):
        load_task("nope")
    with pytest.raises(UserError, match="unknown extractor 'magic'"):
        Task(TaskSpec(name="x", source="synthetic:arithmetic", extractor="magic"))
    with pytest.raises(UserError, match="source .ftp://x. is not one of bfcl:<category>, hf:<dataset id>, json:<path>"):
        Task(TaskSpec(name="x", source="ftp://x"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nsource: synthetic:arithmetic\nprompt_template: x\n")
    with pytest.raises(UserError, match="unknown key 'prompt_template'"):
        load_task(str(bad))


def test_weights_are_reciprocal_of_best_reference_score():
    weights = task_weights([{"a": 0.5, "b": 0.0}, {"a": 0.25, "b": 0.0}], ["a", "b"])
    assert weights == {"a": 2.0, "b": 1.0}
    assert weighted_score({"a": 0.5, "b": 0.3}, weights) == pytest.approx(1.3)
    assert task_weights([{"a": 0.5}], ["a"], {"a": 3.0}) == {"a": 3.0}
