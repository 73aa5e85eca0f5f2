"""Baselines, the final report and replays on the tiny demo study, end to end on a real store."""

import io
import json

import mlflow
import pytest
from rich.console import Console

from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.experiments.baselines import run_baselines
from lamdagent.experiments.replay import Substitution, replay
from lamdagent.exploration.loop import start_or_resume
from lamdagent.reporting.report import build_report
from lamdagent.tracking import Tracker
from tests.conftest import FAST

pytestmark = pytest.mark.slow
STUDY = [*FAST, "sft.epochs=3", "data.train_size=64", "agent.policy=random", "iterations=2"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One exploration (random policy, 2 iterations) and the model baselines, in a fresh store."""
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    console = io.StringIO()
    display = Display(Console(file=console, width=400))
    with display:
        exploration, _, _ = start_or_resume("demo", STUDY, None, Tracker(uri), display)
        group = run_baselines("demo", STUDY, Tracker(uri), display, only=["base", "specialists", "full", "ties_grid"], grid=(0.5, 1.0))
    return {"uri": uri, "folder": folder, "exploration": exploration, "baselines": group, "console": console.getvalue()}


def _runs(uri, filter_string):
    tracker = Tracker(uri)
    experiment = tracker.client.get_experiment_by_name("lamdagent/demo").experiment_id
    return tracker.search_runs(experiment, filter_string)


def test_baselines_are_tagged_runs_and_the_grid_marks_its_best_trial(store):
    runs = _runs(store["uri"], "tags.`lamdagent.kind` = 'baseline'")
    names = sorted(r.data.tags["lamdagent.baseline"] for r in runs)
    assert names.count("ties_grid") == 8  # 2 weights ^ 3 specialists, one run per trial
    assert {"base", "full", "specialist:arith", "specialist:choice", "specialist:facts"} <= set(names)
    trials = [r for r in runs if r.data.tags["lamdagent.baseline"] == "ties_grid"]
    best = [r for r in trials if r.data.tags.get("lamdagent.best_trial") == "true"]
    assert len(best) == 1
    assert best[0].data.metrics["val.score"] == max(r.data.metrics["val.score"] for r in trials)
    assert {k for k in best[0].data.params} == {"weight.spec_arith", "weight.spec_choice", "weight.spec_facts", "density"}
    full = [r for r in runs if r.data.tags["lamdagent.baseline"] == "full"]  # a grid: 1 learning rate x 3 epoch counts, widened
    assert {r.data.tags["lamdagent.pipeline"] for r in full} == {"sft(base, all)"}
    (best,) = [r for r in full if r.data.tags.get("lamdagent.best_trial") == "true"]
    assert best.data.metrics["val.score"] == max(r.data.metrics["val.score"] for r in full)
    # while the best trial is at the grid's longest edge it may be under-trained: the grid doubles its epochs (twice at most);
    # at its shortest edge over-trained: it halves them
    score = {float(r.data.params["epochs"]): r.data.metrics["val.score"] for r in full}
    expected = [1.5, 3.0, 6.0]
    while len(expected) < 5 and (best_epochs := max(expected, key=score.get)) in (max(expected), min(expected)):
        expected.append(2 * best_epochs if best_epochs == max(expected) else best_epochs / 2)
    assert sorted(score) == sorted(expected)
    assert float(best.data.params["epochs"]) == max(expected, key=score.get)
    assert ("widening the grid to 12 epochs" in store["console"]) == (len(expected) > 3)  # said on the console
    assert ("still trained longest (24 epochs" in store["console"]) == (float(best.data.params["epochs"]) == 24.0)


def test_report_numbers_equal_the_store(store, tmp_path):
    display = Display(Console(file=io.StringIO()))
    with display:
        path = build_report("demo", Tracker(store["uri"]), display, tmp_path / "report", top_k=2)
    text = path.read_text()
    assert "Table 1" in text and "Table 2" in text and "![pipelines](figures/pipeline_top1.png)" in text
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    methods = [row["method"] for row in summary["table1"]]
    assert methods[0] == "Base" and "Fully fine-tuned" in methods and "TIES grid search (best)" in methods and "LaMDAgent top-1" in methods
    tracker = Tracker(store["uri"])
    for row, run_id in zip(summary["table1"][-2:], summary["top"]):
        metrics = tracker.client.get_run(run_id).data.metrics
        assert row["test.score"] == pytest.approx(metrics["test.score"], abs=1e-9)
        assert row["val.score"] == pytest.approx(metrics["val.score"], abs=1e-9)
        assert row["arith"] == pytest.approx(metrics["test.arith"], abs=1e-9)
    for name in ("score_by_iteration.png", "pipeline_top1.png"):
        assert (tmp_path / "report" / "figures" / name).stat().st_size > 5000
    (report_run,) = _runs(store["uri"], "tags.`lamdagent.kind` = 'report'")
    logged = {f.path for f in tracker.client.list_artifacts(report_run.info.run_id)}
    assert {"report.md", "table1.csv", "table2.csv", "figures"} <= logged
    assert (tmp_path / "report" / "table1.csv").read_text().splitlines()[0].startswith("method,model,pipeline,val.score,arith")


def test_replay_at_factor_one_reproduces_the_source_exactly(store):
    tracker = Tracker(store["uri"])
    (source,) = _runs(store["uri"], "tags.`lamdagent.baseline` = 'full' and tags.`lamdagent.best_trial` = 'true'")
    with Display(Console(file=io.StringIO())) as display:
        produced = replay(tracker, source.info.run_id, Substitution(), display, reuse=False)
    replayed = tracker.client.get_run(produced.run_id)
    assert replayed.data.tags["lamdagent.kind"] == "replay" and replayed.data.tags["lamdagent.status"] == "ok"
    assert replayed.data.tags["lamdagent.replay_of"] == source.info.run_id
    for metric in ("val.score", "val.arith", "val.choice", "val.facts", "train.loss", "train.tokens"):
        assert replayed.data.metrics[metric] == source.data.metrics[metric], metric


def test_replay_at_factor_two_trains_on_twice_the_data_and_reuses_identical_steps(store):
    tracker = Tracker(store["uri"])
    (source,) = _runs(store["uri"], "tags.`lamdagent.baseline` = 'full' and tags.`lamdagent.best_trial` = 'true'")
    with Display(Console(file=io.StringIO())) as display:
        produced = replay(tracker, source.info.run_id, Substitution(2.0), display)
    steps = tracker.children(tracker.client.get_run(produced.run_id).data.tags["mlflow.parentRunId"], source.info.experiment_id)
    steps = sorted(steps, key=lambda s: s.name != "base")  # both replay iteration 0 of their sources: the lineage orders them
    assert steps[0].name == "base" and steps[1].name == source.info.run_name and steps[1].inputs == [steps[0].run_id]
    assert steps[0].status == "cached"  # the base model is the same step: reused
    ratio = tracker.client.get_run(produced.run_id).data.metrics["train.tokens"] / source.data.metrics["train.tokens"]
    assert 1.9 < ratio < 2.1
    group = tracker.client.get_run(steps[0].run_id).data.tags["mlflow.parentRunId"]
    assert tracker.client.get_run(group).data.tags["lamdagent.substitution"] == "data x2"


def test_replay_and_report_errors_are_one_line(store, tmp_path):
    tracker = Tracker(store["uri"])
    with pytest.raises(UserError, match="no run 'nope'"):
        replay(tracker, "nope", Substitution(), Display(Console(file=io.StringIO())))
    with pytest.raises(UserError, match="no study 'other'"):
        build_report("other", tracker, Display(Console(file=io.StringIO())), tmp_path)
    with pytest.raises(UserError, match="unknown baseline 'grid'"):
        run_baselines("demo", STUDY, tracker, Display(Console(file=io.StringIO())), only=["grid"])


def test_scaling_scripts_reject_bad_ranks_and_factors_in_one_line(store, capsys):
    from lamdagent.cli import scaling

    assert scaling.main("data", ["--study", "demo", "--ranks", "x", "--tracking-uri", store["uri"]]) == 2
    assert "--ranks must be a comma-separated list of whole numbers, got 'x'" in capsys.readouterr().out
    assert scaling.main("model", ["--study", "demo", "--ranks", "99", "--tracking-uri", store["uri"]]) == 2
    assert "rank 99 does not exist" in capsys.readouterr().out
    assert scaling.main("data", ["--study", "demo", "--factors", "0", "--ranks", "1", "--tracking-uri", store["uri"]]) == 2
    assert "data scale must be > 0" in capsys.readouterr().out
