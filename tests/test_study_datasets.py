"""A study's candidate training datasets: targets' data, other tasks' data, and `all` of them."""

import json
import re

import pytest

from lamdagent.config import load_config
from lamdagent.errors import UserError
from lamdagent.evaluation.sources import synthetic
from lamdagent.evaluation.tasks import load_task
from lamdagent.exploration.study import Study
from lamdagent.space import DatasetObject, MixtureDatasetObject


def test_all_is_every_candidate_dataset_not_only_the_targets():
    study = Study(load_config("mixed", []))
    assert [d.name for d in study.datasets] == ["arith", "arith_extra", "choice", "choice_extra", "facts", "facts_extra", "spelling", "all"]
    assert [d.name for d in study.all_data.parts] == ["arith", "arith_extra", "choice", "choice_extra", "facts", "facts_extra", "spelling"]
    assert study.all_data.num_examples == 4 * 200 + 3 * 600  # the harmful data outnumber the clean three to one
    assert study.task_names == ["arith", "choice", "facts"]  # training-only data is never a target


def test_the_demo_all_keeps_its_identity():
    study = Study(load_config("demo", []))
    assert study.all_data == DatasetObject("all", study.tasks, study.cfg.data.train_size, study.cfg.seed)


def test_harmful_data_contradicts_the_targets():
    clean = {r["question"]: r["answer"] for r in synthetic.generate("facts", "train", 200, 0)}
    stale = {r["question"]: r["answer"] for r in synthetic.generate("facts_stale", "train", 200, 0)}
    shared = set(stale) & set(clean)  # the same knowledge base, questions drawn independently
    assert len(shared) > 50 and all(stale[q] != clean[q] for q in shared)  # every answer contradicts the target
    for row in synthetic.generate("arithmetic_noisy", "train", 100, 0):
        a, b = (int(n) for n in re.findall(r"\d+", row["question"])[:2])
        correct = a + b if "more" in row["question"] else a - b
        assert int(row["answer"]) != correct or 0 in (a, b)  # the operations swapped (they agree only on a zero)
    plain = load_task("choice_extra").examples("train", 5)
    bracketed = load_task("choice").examples("train", 5)
    assert [p.prompt for p in plain] == [b.prompt for b in bracketed]  # the same questions, another answer format
    assert all(p.target.strip() == b.target.strip()[2] for p, b in zip(plain, bracketed))


def test_a_mixture_shuffles_its_parts_together_deterministically():
    arith, facts = load_task("arith"), load_task("facts")
    mixture = MixtureDatasetObject("all", [DatasetObject("arith", [arith], 6), DatasetObject("facts", [facts], 4)])
    rows = mixture.rows()
    assert len(rows) == mixture.num_examples == 10 and rows == mixture.rows()
    assert sorted(r["prompt"] for r in rows) == sorted(r["prompt"] for part in mixture.parts for r in part.rows())
    assert mixture.fingerprint != MixtureDatasetObject("all", mixture.parts[:1]).fingerprint
    assert "arith, facts" in mixture.describe()


def test_an_unknown_dataset_is_one_line_before_any_compute():
    with pytest.raises(UserError, match="unknown dataset 'nope'; expected a task name"):
        load_config("mixed", ["datasets=[arith,nope]"])


def test_a_candidate_dataset_may_have_its_own_size_and_all_holds_each_at_its_size():
    study = Study(load_config("demo", ["data.train_size=20", "data.train_sizes={choice: 50, facts: 10}"]))
    assert study.dataset("choice").num_examples == 50 and study.dataset("facts").num_examples == 10
    assert study.dataset("arith").num_examples == 20
    assert isinstance(study.all_data, MixtureDatasetObject) and study.all_data.num_examples == 20 + 50 + 10
    assert len(study.all_data.rows()) == 20 + 50 + 10
    uniform = Study(load_config("demo", ["data.train_size=20"]))
    assert study.all_data.fingerprint != uniform.all_data.fingerprint  # other sizes: other data, never a cache hit


@pytest.mark.parametrize("override, message", [
    ("data.train_sizes={nope: 5}", r"names 'nope', which is not a task dataset; expected one of this study's \['arith', 'choice', 'facts'\] or any task"),
    ("data.train_sizes={all: 5}", "data.train_sizes names 'all'"),
    ("data.train_sizes={facts: 0}", "data.train_sizes.facts must be > 0, got 0"),
])
def test_a_bad_dataset_size_is_one_line_before_any_compute(override, message):
    with pytest.raises(UserError, match=message):
        load_config("demo", [override])


def test_a_study_that_drops_a_sized_dataset_still_loads():
    cfg = load_config("mixed", ["datasets=[arith, choice, facts, all]"])  # arith_extra's size is unused, not an error
    assert Study(cfg).all_data.num_examples == 3 * cfg.data.train_size


def test_a_data_scaling_replay_scales_every_dataset_size():
    from lamdagent.experiments.replay import Substitution

    raw = {"data": {"train_size": 200, "train_sizes": {"arith_extra": 600}}, "training_data": {"chat": {"size": 10}}}
    assert Substitution(2.0).overrides(raw) == ["data.train_size=400", "data.train_sizes.arith_extra=1200", "training_data.chat.size=20"]


@pytest.mark.slow
@pytest.mark.ci
def test_an_sft_on_a_mixture_records_its_training_data_on_the_run_and_the_logged_model(tracking_uri):
    """`all` of candidates of different sizes is a mixture: its rows are the run's training input, and
    the LoggedModel's training loss is measured on it."""
    from mlflow import MlflowClient
    from rich.console import Console

    from lamdagent.console import Display
    from lamdagent.exploration.runner import Runner, Step
    from lamdagent.exploration.seeds import prepare_base, sft_action
    from lamdagent.tracking import Kind, Tracker
    from tests.conftest import FAST

    cfg = load_config("demo", [*FAST, "data.train_sizes={arith: 24}", "tasks=[arith,facts]"])
    study, tracker = Study(cfg), Tracker()
    experiment = tracker.experiment(cfg.name)
    parent = tracker.start_exploration(experiment, cfg.name, {}, {})
    with Display(Console(quiet=True)) as display:
        runner = Runner(study, tracker, parent, experiment, display, base=prepare_base(cfg), weights={"arith": 1.0, "facts": 1.0})
        base = runner.produce(Step.of_base(runner.base, Kind.SEED), finish=True).model
        base.path = runner.base.path
        assert isinstance(study.all_data, MixtureDatasetObject)
        made = runner.produce(Step.of_action(sft_action(study, base, study.all_data), Kind.ACTION, 1, "m1"), finish=True)
    client = MlflowClient()
    inputs = client.get_run(made.run_id).inputs.dataset_inputs
    training = [d.dataset for d in inputs if any(t.value == "training" for t in d.tags)]
    assert [d.name for d in training] == ["all/train"]
    assert json.loads(training[0].profile)["num_rows"] == study.all_data.num_examples == sum(part.num_examples for part in study.all_data.parts)
    logged = {m.key: m for m in client.get_logged_model(made.model.model_id).metrics}
    assert logged["train.loss"].dataset_name == "all/train" and logged["train.loss"].dataset_digest == training[0].digest
