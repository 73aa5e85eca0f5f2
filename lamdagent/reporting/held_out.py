"""Scores on the held-out test split and the out-of-distribution tasks, logged on the model's run
(`test.<task>`, `test.score`, `ood.<task>`) so that a second report reads them instead of recomputing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from lamdagent.console import Display
from lamdagent.evaluation.evaluator import evaluate, weighted_score
from lamdagent.exploration.presenting import split_data
from lamdagent.exploration.runner import Runner
from lamdagent.exploration.study import Study
from lamdagent.tracking import Record, Status, Tracker
from lamdagent.tracking.models import Measured


def held_out_scores(run, tasks: list[str], ood: list[str]) -> dict[str, float] | None:
    """The run's logged test/ood metrics, or None when some are missing."""
    metrics = run.data.metrics
    wanted = [f"test.{t}" for t in tasks] + ["test.score"] + [f"ood.{t}" for t in ood]
    return {k: metrics[k] for k in wanted} if all(k in metrics for k in wanted) else None


def ensure_held_out(study: Study, tracker: Tracker, runner: Runner, records: list[Record], weights: dict[str, float],
                    display: Display) -> dict[str, dict[str, float]]:
    """run id -> {test.<task>, test.score, ood.<task>} for each record, evaluating the models not yet
    scored (once per model: repeats of a model share its scores)."""
    tasks, ood = study.task_names, [t.name for t in study.ood_tasks]
    scores: dict[str, dict[str, float]] = {}
    by_model: dict[str, dict[str, float]] = {}
    for record in records:
        known = held_out_scores(tracker.run(record.run_id), tasks, ood)
        if known is not None and (score := weighted_score({t: known[f"test.{t}"] for t in tasks}, weights)) != known["test.score"]:
            known["test.score"] = score  # logged with other weights (the score is derived: the per-task scores are the measurement)
            tracker.log(record.run_id, metrics={"test.score": score})
        if known is None:
            if record.model_id not in by_model:
                display.step(f"test and out-of-distribution evaluation of {record.name}: {record.pipeline}")
                by_model[record.model_id] = _evaluate(study, runner, record, weights)
                display.done_step()
            known = by_model[record.model_id]
            tracker.log(record.run_id, metrics=known, measured=_measured(study, record, known))
        scores[record.run_id] = by_model[record.model_id] = known
    return scores


def _measured(study: Study, record: Record, metrics: dict[str, float]) -> Measured | None:
    """The held-out metrics as the LoggedModel's too (on the run that made it), with their datasets."""
    if record.status != Status.OK or not record.model_id:
        return None
    cfg = study.cfg
    test = split_data(study, study.tasks, "test", cfg.data.test_size, "test")
    ood = split_data(study, study.ood_tasks, "test", cfg.data.test_size, "ood") if study.ood_tasks else None
    return Measured(record.model_id, {k: test if k.startswith("test.") else ood for k in metrics if k.startswith("test.") or ood})


def _evaluate(study: Study, runner: Runner, record: Record, weights: dict[str, float]) -> dict[str, float]:
    cfg = study.cfg
    model = runner.model_of_run(record.run_id)
    with tempfile.TemporaryDirectory() as work:
        ctx = runner.context(Path(work))
        loaded, tokenizer = ctx.load(model)
        options = {"seed": cfg.seed, "batch_size": cfg.evaluation.batch_size, "chat_template": cfg.chat_template}
        test = evaluate(loaded, tokenizer, study.tasks, "test", cfg.data.test_size, **options)
        ood = evaluate(loaded, tokenizer, study.ood_tasks, "test", cfg.data.test_size, **options) if study.ood_tasks else None
    metrics = {f"test.{t}": v for t, v in test.scores.items()}
    metrics["test.score"] = weighted_score(test.scores, weights)
    if ood:
        metrics.update({f"ood.{t}": v for t, v in ood.scores.items()})
    runner.tracker.log_jsons(record.run_id, {f"predictions/{split}/{task}.json": rows for split, result in (("test", test), ("ood", ood)) if result
                                             for task, rows in result.predictions.items()})
    return metrics

