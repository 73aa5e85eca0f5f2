"""`lm_eval:` task sources: prompts, generation settings and rewards are lm-evaluation-harness's own,
checked against lm-eval's API run independently, on a GSM8K-shaped task over local JSON
(tests/data/lm_eval/), and as the target of a short exploration."""

from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path

import mlflow
import pytest
from rich.console import Console

from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.evaluation.evaluator import evaluate
from lamdagent.evaluation.tasks import Task, TaskSpec, load_task
from lamdagent.exploration.loop import start_or_resume
from lamdagent.tracking import Kind, Tracker
from tests.conftest import FAST

pytestmark = [pytest.mark.requires("lm_eval"),
              pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="lm-evaluation-harness is not installed (make install adds it)")]

DATA = Path(__file__).resolve().parent.parent / "data" / "lm_eval"
FILTERS = ("strict-match", "flexible-extract")
# generations for a document whose answer is {g}: the two filters disagree on most of them
GENERATIONS = [" He has {g} apples.\n#### {g}", " The answer is {g}.", " {g}", " $ {g} dollars", " #### {w}", " so {w} then {g}", " no idea", " ### {g}"]


@pytest.fixture
def lm_eval_yaml(tmp_path) -> Path:
    """The tiny lm-eval task YAML with absolute data paths (lm-eval reads data_files from the cwd)."""
    text = re.sub(r"(tiny_math_\w+\.jsonl)", lambda m: str(DATA / m.group(1)), (DATA / "tiny_math.yaml").read_text())
    path = tmp_path / "lm_eval" / "tiny_math.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return path


def _ours(yaml_path: Path, **options) -> Task:
    return Task(TaskSpec(name="tiny_math", source=f"lm_eval:{yaml_path}", **options))


def _theirs(yaml_path: Path, n: int, samples: list[int] | None = None):
    """lm-eval's own task and requests for its evaluated split, as its evaluator builds them."""
    from lm_eval.tasks import TaskManager

    (task,) = TaskManager(include_defaults=False).load(str(yaml_path))["tasks"].values()
    task.set_fewshot_seed(1234)  # lm-eval's default fewshot_random_seed
    task.build_all_requests(limit=n, samples=samples)
    return task


def _only_validation(yaml_path: Path) -> Path:
    """The same task without a test split: lm-eval then evaluates its validation split."""
    path = yaml_path.with_name("tiny_math_val.yaml")
    path.write_text(yaml_path.read_text().replace("test_split: test\n", "").replace("task: tiny_math", "task: tiny_math_val"))
    return path


def test_prompts_and_generation_settings_are_lm_evals(lm_eval_yaml):
    task = _ours(lm_eval_yaml)
    for split, yaml_path in (("test", lm_eval_yaml), ("val", _only_validation(lm_eval_yaml))):
        theirs = _theirs(yaml_path, 8)
        examples = task.examples(split, 8)
        assert [ex.prompt for ex in examples] == [inst.arguments[0] for inst in theirs.instances]
        assert all(inst.arguments[1]["until"] == task.spec.until == ["Question:", "\n\n"] for inst in theirs.instances)
        assert theirs.instances[0].arguments[1]["max_gen_toks"] == task.spec.max_new_tokens == 8
    (first,) = task.examples("val", 1)
    assert first.prompt.count("Question:") == 3 and first.prompt.endswith("Answer:")  # 2-shot from the train split
    assert first.target.startswith(" He has") and "####" in first.target  # target_delimiter + doc_to_target: trainable


@pytest.mark.parametrize("filter_name", FILTERS)
def test_rewards_and_aggregate_equal_lm_evals_on_the_same_generations(lm_eval_yaml, filter_name):
    task = _ours(lm_eval_yaml, lm_eval_filter=filter_name)
    theirs = _theirs(lm_eval_yaml, 8)
    golds = [inst.doc["answer"].split("####")[-1].strip() for inst in theirs.instances]
    compared = 0
    for shift in range(len(GENERATIONS)):
        generations = [GENERATIONS[(i + shift) % len(GENERATIONS)].format(g=g, w=int(g) + 1) for i, g in enumerate(golds)]
        for inst, generation in zip(theirs.instances, generations):
            inst.resps = [generation]
            inst.filtered_resps = {}
        theirs.apply_filters()
        expected = [theirs.process_results(inst.doc, [inst.filtered_resps[filter_name]])["exact_match"] for inst in theirs.instances]
        result = evaluate(None, None, [task], "test", 8, generate=lambda prompts, *_, **__: generations)
        rows = result.predictions["tiny_math"]
        assert [r["reward"] for r in rows] == expected
        assert [r["answer"] for r in rows] == [str(inst.filtered_resps[filter_name]) for inst in theirs.instances]
        assert result.scores["tiny_math"] == pytest.approx(theirs.aggregation()["exact_match"](expected))
        compared += len(rows)
    assert compared == 64


def test_strict_match_and_flexible_extract_differ_as_in_lm_eval(lm_eval_yaml):
    strict, flexible = _ours(lm_eval_yaml), _ours(lm_eval_yaml, lm_eval_filter="flexible-extract")
    assert strict.spec.lm_eval_filter == "strict-match"  # the task's first filter is the default
    (example,) = strict.examples("test", 1)
    gold = example.target.split("####")[-1].strip()
    assert strict.score(f" The answer is {gold}.", example.gold) == ("[invalid]", 0.0)
    assert flexible.score(f" The answer is {gold}.", example.gold) == (f"{gold}.", 1.0)
    assert strict.score(f" #### {gold}", example.gold) == (gold, 1.0)
    assert strict.definition_key() != flexible.definition_key()


def test_the_definition_follows_the_lm_eval_yaml(lm_eval_yaml):
    first = _ours(lm_eval_yaml).definition_key()
    assert _ours(lm_eval_yaml).definition_key() == first
    lm_eval_yaml.write_text(lm_eval_yaml.read_text().replace("num_fewshot: 2", "num_fewshot: 1"))
    edited = _ours(lm_eval_yaml)
    assert edited.definition_key() != first
    assert edited.examples("val", 1)[0].prompt.count("Question:") == 2  # the edit is read again


def test_split_mapping_and_limit(lm_eval_yaml):
    task = _ours(lm_eval_yaml, lm_eval_splits={"val": "test"}, lm_eval_limit=5)
    assert [ex.prompt for ex in task.examples("val", 5)] == [inst.arguments[0] for inst in _theirs(lm_eval_yaml, 5).instances]
    with pytest.raises(UserError, match="split 'val' has 5 examples, 6 requested"):
        task.examples("val", 6)
    with pytest.raises(UserError, match="has no split 'dev'; its data has"):
        _ours(lm_eval_yaml, lm_eval_splits={"test": "dev"}).examples("test", 1)
    sliced = _ours(lm_eval_yaml, lm_eval_splits={"val": "test[:4]", "test": "test[4:]"})  # as hf_splits: val and test apart
    assert [ex.prompt for ex in sliced.examples("test", 4)] == [inst.arguments[0] for inst in _theirs(lm_eval_yaml, None, [4, 5, 6, 7]).instances]
    assert len(sliced.rows("val", 8)) == 4
    with pytest.raises(UserError, match=r"'test\[4\]' is not a split name or name\[a:b\]"):
        _ours(lm_eval_yaml, lm_eval_splits={"test": "test[4]"})


def test_bad_input_is_one_line_before_any_data_is_read(lm_eval_yaml, tmp_path):
    cases = [
        (dict(source="lm_eval:no_such_task_xyz"), "unknown lm-eval task 'no_such_task_xyz'"),
        (dict(source=f"lm_eval:{tmp_path / 'missing.yaml'}"), "lm-eval task file .*missing.yaml' does not exist"),
        (dict(source=f"lm_eval:{lm_eval_yaml}", lm_eval_filter="loose"),
         r"has no filter 'loose'; expected one of \['strict-match', 'flexible-extract'\]"),
        (dict(source=f"lm_eval:{lm_eval_yaml}", lm_eval_metric="bleu"), r"has no metric 'bleu'; expected one of \['exact_match'\]"),
        (dict(source=f"lm_eval:{lm_eval_yaml}", prompt="Q: {{ question }}"), "`prompt` is defined by lm-eval"),
        (dict(source=f"lm_eval:{lm_eval_yaml}", lm_eval_splits={"dev": "validation"}), "'dev' is not one of"),
        (dict(source="synthetic:arithmetic", lm_eval_filter="strict-match"), "apply to lm_eval: sources only"),
    ]
    for options, message in cases:
        with pytest.raises(UserError, match=message) as err:
            Task(TaskSpec(name="t", **options))
        assert "\n" not in str(err.value) and str(err.value).startswith("task 't': ")
    choice = lm_eval_yaml.with_name("choice.yaml")
    choice.write_text(lm_eval_yaml.read_text().replace("output_type: generate_until", "output_type: multiple_choice")
                      .replace("task: tiny_math", "task: tiny_choice"))
    with pytest.raises(UserError, match="lm-eval task 'tiny_choice' is multiple_choice; only generate_until tasks"):
        _ours(choice)


def test_a_task_yaml_names_an_lm_eval_task(lm_eval_yaml, tmp_path):
    task_file = tmp_path / "tiny_math.yaml"
    task_file.write_text(f"name: tiny_math\nsource: lm_eval:{lm_eval_yaml}\nlm_eval_filter: strict-match\n")
    task = load_task(str(task_file))
    assert task.spec.lm_eval_filter == "strict-match" and task.spec.lm_eval_metric == "exact_match"


def test_a_short_exploration_targets_an_lm_eval_task(tracking_uri, lm_eval_yaml, tmp_path):
    task_file = tmp_path / "tiny_math_task.yaml"
    task_file.write_text(f"name: tiny_math\nsource: lm_eval:{lm_eval_yaml}\n")
    overrides = [*FAST, "data.train_size=16", "data.val_size=4", "data.test_size=4", "iterations=1", f"tasks=[{task_file}]",
                 "datasets=[]", "actions=[ties]", "agent.policy=random"]
    with Display(Console(file=io.StringIO())) as display:
        _, records, _ = start_or_resume("demo", overrides, None, Tracker(), display)
    client = mlflow.MlflowClient()
    runs = {r.name: client.get_run(r.run_id) for r in records}
    assert {r.kind for r in records} == {Kind.SEED, Kind.ACTION}
    for name, run in runs.items():
        assert 0.0 <= run.data.metrics["val.tiny_math"] <= 1.0, name
    prompts = mlflow.artifacts.download_artifacts(f"runs:/{runs['base'].info.run_id}/predictions/val/tiny_math.json")
    assert Path(prompts).read_text().count("Question:") >= 4 * 3  # the 2-shot prompts lm-eval builds
