"""The search benchmark: policies x seeds at one budget, logged as ordinary explorations, with
best-so-far figures and a table of held-out test scores."""

from __future__ import annotations

import json

import mlflow
import pytest

from lamdagent.experiments.comparison import Search, iterations_to_reach, mean_ci
from lamdagent.tracking import Kind, Record
from tests.conftest import FAST


def test_mean_and_95_percent_interval():
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.303 * 1.0 / 3 ** 0.5)  # t(0.975, 2) * sd / sqrt(n)
    assert mean_ci([2.5]) == (2.5, 2.5, 2.5)


def test_best_so_far_and_iterations_to_reach():
    def record(iteration, score, seconds=10.0):
        return Record(f"r{iteration}", Kind.ACTION, iteration, f"m{iteration}", "ok", score=score, cost_seconds=seconds)

    search = Search("greedy", 0, "x", [Record("s", Kind.SEED, 0, "base", "ok", score=1.0)], [record(1, 0.5), record(2, 1.5), record(3, 1.2)])
    assert search.best_so_far() == [(0, 1.0), (1, 1.0), (2, 1.5), (3, 1.5)]
    assert search.best_by_seconds() == [(0.0, 1.0), (10.0, 1.0), (20.0, 1.5), (30.0, 1.5)]
    assert iterations_to_reach(search, 1.4) == 2 and iterations_to_reach(search, 9.0) is None


@pytest.mark.slow
def test_a_short_comparison_logs_explorations_and_writes_its_files(tracking_uri, tmp_path, capsys):
    from lamdagent.cli import main

    out = tmp_path / "compare"
    argv = ["compare-policies", "--study", "demo", "--policies", "random,greedy", "--seeds", "2", "--budget", "1", "--no-baselines", "--out", str(out),
            *FAST, "tasks=[arith,facts]", "datasets=[arith,facts,all]"]
    assert main(argv) == 0
    for name in ("best_so_far_by_iteration.png", "best_so_far_by_seconds.png", "comparison.md", "comparison.csv", "comparison.json"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "comparison.json").read_text())
    assert [(s["policy"], s["seed"]) for s in summary["searches"]] == [("random", 0), ("random", 1), ("greedy", 0), ("greedy", 1)]
    assert all(s["test_score"] is not None and len(s["best_so_far"]) == 2 for s in summary["searches"])
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("lamdagent/demo").experiment_id
    (group,) = client.search_runs([experiment], "tags.`lamdagent.kind` = 'comparison'")
    explorations = client.search_runs([experiment], f"tags.`lamdagent.comparison` = '{group.info.run_id}'")
    assert sorted(r.data.tags["lamdagent.baseline"] for r in explorations) == ["compare:greedy"] * 2 + ["compare:random"] * 2
    assert sorted(r.data.params["agent.seed"] for r in explorations) == ["0", "0", "1", "1"]
    assert sorted(r.data.params["train_seed"] for r in explorations) == ["0", "0", "1", "1"]  # a seed varies the training too
    assert {a.path for a in client.list_artifacts(group.info.run_id)} >= {"comparison.md", "best_so_far_by_iteration.png"}
    out = capsys.readouterr().out
    assert "test.score of top-1" in out
    # no UI serves the store: the command that serves the study's links (the store is the working folder's default)
    assert "MLflow UI: `lamdagent ui --study demo` serves the study's models ranked by val.score" in " ".join(out.split())


@pytest.mark.slow
def test_baselines_run_on_the_same_seeds_and_equal_compute_takes_the_grids_compute(tracking_uri, tmp_path):
    """Full fine-tuning: its grid at seed 0, its chosen setting again at seed 1 (an interval); every
    exploration gets the grid's compute as its budget, and the table states each method's compute."""
    from lamdagent.cli import main

    out = tmp_path / "compare"
    argv = ["compare-policies", "--study", "demo", "--policies", "greedy", "--seeds", "2", "--equal-compute", "--out", str(out),
            *FAST, "tasks=[arith,facts]", "datasets=[arith,facts,all]"]
    assert main(argv) == 0
    summary = json.loads((out / "comparison.json").read_text())
    full = next(b for b in summary["baselines"] if b["label"].startswith("fully fine-tuned"))
    assert len(full["runs"]) == 2 and len(full["test_scores"]) == 2 and full["compute_seconds"] > 0
    assert summary["budget_seconds"] == pytest.approx(full["compute_seconds"])
    client = mlflow.MlflowClient()
    parents = [client.get_run(client.get_run(run).data.tags["mlflow.parentRunId"]).data.tags["mlflow.parentRunId"] for run in full["runs"]]
    assert [client.get_run(p).data.params["train_seed"] for p in parents] == ["None", "1"]
    for search in summary["searches"]:  # stopped by the compute budget (the action that crossed it finishes)
        assert search["compute_seconds"] >= summary["budget_seconds"] or len(search["best_so_far"]) > 1
    row = next(r for r in summary["rows"] if r["method"].startswith("fully fine-tuned"))
    assert row["95% CI"].startswith("[") and row["compute (s, mean)"] == pytest.approx(full["compute_seconds"])
