"""The search benchmark: policies x seeds at one budget, logged as ordinary explorations, with
best-so-far figures and a table of held-out test scores."""

from __future__ import annotations

import json
import math
import statistics

import mlflow
import pytest

from lamdagent.config import load_config
from lamdagent.experiments.comparison import Search, iterations_to_reach, mean_ci
from lamdagent.experiments.replay import reference_weights
from lamdagent.tracking import Kind, Record, Tracker
from tests.conftest import FAST

# two-sided 95% quantiles of Student's t as printed in statistical tables (3 decimals), by degrees of freedom
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179,
           13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
           25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 60: 2.000, 120: 1.980}


def test_mean_and_95_percent_interval():
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.303 * 1.0 / 3 ** 0.5, abs=1e-3)  # t(0.975, 2) * sd / sqrt(n)
    assert mean - low == pytest.approx(high - mean)
    assert mean_ci([2.5]) == (2.5, 2.5, 2.5)
    assert mean_ci([1.0, float("nan"), None, 3.0])[0] == 2.0  # missing values are left out
    assert all(math.isnan(x) for x in mean_ci([]))


@pytest.mark.parametrize("df", sorted(T_TABLE))
def test_the_interval_uses_the_exact_t_quantile_of_its_degrees_of_freedom(df):
    values = [float(i % 2) for i in range(df + 1)]  # n = df + 1 values of 0 and 1
    mean, low, high = mean_ci(values)
    t = (high - mean) * math.sqrt(len(values)) / statistics.stdev(values)
    assert t == pytest.approx(T_TABLE[df], abs=5e-4)  # not the next table row: df=11 is 2.201, not 2.131


def test_best_so_far_and_iterations_to_reach():
    def record(iteration, score, seconds=10.0):
        return Record(f"r{iteration}", Kind.ACTION, iteration, f"m{iteration}", "ok", score=score, cost_seconds=seconds, compute_flops=iteration * 1e9)

    search = Search("greedy", 0, "x", [Record("s", Kind.SEED, 0, "base", "ok", score=1.0)], [record(1, 0.5), record(2, 1.5), record(3, 1.2)])
    assert search.best_so_far() == [(0, 1.0), (1, 1.0), (2, 1.5), (3, 1.5)]
    assert search.best_by_compute() == [(0.0, 1.0), (10.0, 1.0), (20.0, 1.5), (30.0, 1.5)]
    assert search.best_by_compute("flops") == [(0.0, 1.0), (1e9, 1.0), (3e9, 1.5), (6e9, 1.5)]
    assert iterations_to_reach(search, 1.4) == 2 and iterations_to_reach(search, 9.0) is None


def test_each_policy_is_judged_against_full_fine_tuning_random_and_the_base():
    from lamdagent.experiments.verdict import verdicts

    full, base = [2.0, 2.2, 2.4], 1.5
    judged = {v.policy: v for v in verdicts({"greedy": [3.0, 3.1, 3.2], "optuna": [2.0, 3.0, 4.0], "random": [1.8, 2.0, 2.2],
                                             "guided": [3.0, 3.1, 1.4]}, full, base)}
    assert judged["greedy"].met and "above, the intervals apart" in judged["greedy"].text and judged["greedy"].text.endswith(": met")
    assert (judged["optuna"].above_full, judged["optuna"].above_random, judged["optuna"].met) == (False, True, False)  # above on the mean only
    assert "tuned full fine-tuning 2.200 [1.703, 2.697]: above on the mean, the intervals overlap" in judged["optuna"].text
    assert judged["guided"].never_below_base is False and "1 of 3 seeds below it" in judged["guided"].text and not judged["guided"].met
    assert judged["random"].above_random is None and "; random " not in judged["random"].text  # random is the bar, not judged by itself
    assert judged["greedy"].as_dict()["met"] is True
    # no full fine-tuning: nothing can be met; one seed of a bar has no interval
    (alone,) = verdicts({"greedy": [3.0, 3.1]}, [], None)
    assert not alone.met and alone.text.endswith("not judged (no full fine-tuning)")
    (alone,) = verdicts({"greedy": [3.0, 3.1, 3.2]}, full, None)  # met against full fine-tuning, with no random and no base to say so of
    assert alone.met and alone.text.endswith(": met (random and the base not run)")
    (one,) = verdicts({"greedy": [3.0, 3.1]}, [2.9], 1.0)
    assert "tuned full fine-tuning 2.900: above on the mean" in one.text and not one.met  # 3.05 - t * sd is below 2.9


@pytest.mark.slow
@pytest.mark.ci  # compare-policies end to end, on the base alone and one task: 2 policies x 2 seeds x 1 iteration
def test_a_short_comparison_logs_explorations_and_writes_its_files(tracking_uri, tmp_path, capsys):
    from lamdagent.cli import main

    out = tmp_path / "compare"
    argv = ["compare-policies", "--study", "demo", "--policies", "random,greedy", "--seeds", "2", "--budget", "1", "--no-baselines", "--out", str(out),
            *FAST, "tasks=[arith]", "datasets=[arith,facts]", "specialists=false", "data.test_size=20"]
    assert main(argv) == 0
    for name in ("best_so_far_by_iteration.png", "best_so_far_by_seconds.png", "best_so_far_by_flops.png", "comparison.md", "comparison.csv",
                 "comparison.json"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "comparison.json").read_text())
    assert [(s["policy"], s["seed"]) for s in summary["searches"]] == [("random", 0), ("random", 1), ("greedy", 0), ("greedy", 1)]
    assert all(s["test_score"] is not None and len(s["best_so_far"]) == 2 for s in summary["searches"])
    (base,) = [b for b in summary["baselines"] if b["label"] == "base"]  # without the baselines too: the bar "never below the base"
    assert len(base["test_scores"]) == 1 and 0 <= base["test_scores"][0]
    assert [v["policy"] for v in summary["verdicts"]] == ["random", "greedy"] and not any(v["met"] for v in summary["verdicts"])
    assert "Target (above full fine-tuning's interval, above random, never below the base): not judged" in summary["verdicts"][1]["text"]
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

    # seeds added to it later: --first-seed 2 runs seed 2 only
    argv[argv.index("random,greedy")], argv[argv.index("--seeds") + 1] = "greedy", "1"
    assert main([*argv, "--first-seed", "2"]) == 0
    summary = json.loads((tmp_path / "compare" / "comparison.json").read_text())
    assert [(s["policy"], s["seed"]) for s in summary["searches"]] == [("greedy", 2)]
    (added,) = client.search_runs([experiment], "tags.`lamdagent.policy_seed` = '2'")
    assert added.data.params["agent.seed"] == added.data.params["train_seed"] == "2"


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
    assert len(full["runs"]) == 2 and len(full["test_scores"]) == 2 and full["compute_seconds"] > 0 and full["compute_flops"] > 0
    assert summary["budget_flops"] == pytest.approx(full["compute_flops"]) and summary["budget_seconds"] is None  # operations, not seconds
    client = mlflow.MlflowClient()
    parents = [client.get_run(client.get_run(run).data.tags["mlflow.parentRunId"]).data.tags["mlflow.parentRunId"] for run in full["runs"]]
    assert [client.get_run(p).data.params["train_seed"] for p in parents] == ["None", "1"]
    # the retrain at seed 1 trains only the chosen setting: its specialists, and so w_t, are the study's
    tracker = Tracker(mlflow.get_tracking_uri())
    experiment = client.get_run(parents[0]).info.experiment_id
    specialists = [{r.name: r.fingerprint for r in tracker.children(p, experiment) if r.name.startswith("spec_")} for p in parents]
    assert specialists[0] and specialists[1] == specialists[0]
    weights = reference_weights(tracker, parents[0], experiment, load_config("demo", [*FAST, "tasks=[arith,facts]", "datasets=[arith,facts,all]"]))
    retrained = tracker.record(full["runs"][1])
    assert retrained.score == pytest.approx(sum(weights[t] * retrained.scores[t] for t in weights))
    for search in summary["searches"]:  # stopped by the compute budget (the action that crossed it finishes)
        assert search["compute_flops"] >= summary["budget_flops"] or len(search["best_so_far"]) > 1
    row = next(r for r in summary["rows"] if r["method"].startswith("fully fine-tuned"))
    assert row["95% CI"].startswith("[") and row["compute (s, mean)"] == pytest.approx(full["compute_seconds"])
    assert float(row["compute (FLOPs, mean)"]) == pytest.approx(full["compute_flops"], rel=1e-2)
    (verdict,) = summary["verdicts"]  # greedy judged against the full fine-tuning it ran with
    assert verdict["above_full"] is not None and "tuned full fine-tuning" in verdict["text"] and "the base" in verdict["text"]


def test_held_out_weights_come_from_the_base_and_specialists_not_the_defaults(tracking_uri):
    """w_t on the test split is the exploration's own: 1 / max r_t over the base and the specialists.
    The practitioner's default `ft_all` (trained at each seed's train_seed) once entered it, so two
    comparisons scored the same model 4.695 and 3.710 on test depending on which seed came first."""
    from lamdagent.experiments.replay import reference_weights
    from lamdagent.tracking import Status, Tracker

    tracker = Tracker(tracking_uri)
    experiment = tracker.experiment("unit")
    parent = tracker.start_exploration(experiment, "unit", {}, {})
    for name, arith, facts in (("base", 0.2, 0.1), ("spec_arith", 0.5, 0.0), ("spec_facts", 0.1, 0.4), ("ft_all", 0.8, 0.6)):
        tracker.start_and_finish(parent, experiment, Kind.SEED, name, {}, {"val.arith": arith, "val.facts": facts}, Status.OK)
    cfg = type("Cfg", (), {"tasks": ["arith", "facts"], "task_weights": {}})
    assert reference_weights(tracker, parent, experiment, cfg) == pytest.approx({"arith": 1 / 0.5, "facts": 1 / 0.4})
    assert reference_weights(tracker, "no-seeds-here", experiment, cfg) == pytest.approx({"arith": 2.0, "facts": 2.5})  # the study's, any exploration


def test_a_stored_test_score_is_re_derived_with_the_weights_in_force(tracking_uri):
    """A test.score logged under other weights is recomputed from the per-task test scores (the
    measurement) and logged again; no model is evaluated for it."""
    from types import SimpleNamespace

    from lamdagent.reporting.held_out import ensure_held_out
    from lamdagent.tracking import Status, Tracker

    tracker = Tracker(tracking_uri)
    experiment = tracker.experiment("unit")
    parent = tracker.start_exploration(experiment, "unit", {}, {})
    run = tracker.start_and_finish(parent, experiment, Kind.ACTION, "m1", {}, {"test.arith": 0.5, "test.facts": 0.4, "test.score": 9.0}, Status.OK)
    study = SimpleNamespace(task_names=["arith", "facts"], ood_tasks=[])
    record = SimpleNamespace(run_id=run, model_id="model-1")
    held = ensure_held_out(study, tracker, None, [record], {"arith": 2.0, "facts": 2.5}, None)
    assert held[run]["test.score"] == pytest.approx(2.0 * 0.5 + 2.5 * 0.4)
    assert tracker.run(run).data.metrics["test.score"] == pytest.approx(2.0)
    assert [m.value for m in mlflow.MlflowClient().get_metric_history(run, "test.score")] == [9.0, pytest.approx(2.0)]  # nothing lost
