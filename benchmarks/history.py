"""Reading the history and memory the agent decides from (every action run of the exploration,
the model objects with their lineage, the last memory, the models' lines of the prompt) from a
store holding 1,000 action runs. Target: < 1 s."""

from __future__ import annotations

import json
import random
import shutil
import time

from benchmarks._common import Options, Result, Scratch, median, timed

NAME = "history"
TARGET_S = 1.0


def populate(s: Scratch, runs: int, series: int = 100) -> float:
    """`runs` finished action runs shaped like the tool's (tags, params, scores, a loss curve),
    written with one create_run and one log_batch each; the last one holds the memory. Seconds taken."""
    from mlflow.entities import Metric, Param

    from lamdagent import tracking as tr

    started, client, rng = time.perf_counter(), s.tracker.client, random.Random(0)
    ids: list[str] = []
    for i in range(1, runs + 1):
        merge = i > 2 and i % 2 == 0
        inputs = rng.sample(ids, 2) if merge else ids[-1:]
        action = {"model_a": f"m{i - 1}", "model_b": f"m{i - 2}", "weight": "0.5"} if merge else {"model": f"m{i - 1}", "dataset": "all"}
        tags = {"fingerprint": f"fp{i}", "pipeline": f"{'ties' if merge else 'sft'}(m{i - 1}, ...)", "inputs": json.dumps(inputs),
                "action_type": "ties" if merge else "sft", "action": json.dumps(action), "policy": "llm", "status": str(tr.Status.OK),
                "model_id": f"m-{i:06d}", "model_version": str(i), "arch": "llama/128/256/4/4/600"}
        run_id = s.tracker.start_child(s.parent, tr.Kind.ACTION, i, f"m{i}", tags, experiment_id=s.experiment_id)
        now = int(time.time() * 1000)
        scores = {f"val.{t}": rng.random() for t in s.study.task_names}
        metrics = [Metric(k, v, now, 0) for k, v in {**scores, "val.score": sum(scores.values()), "cost.seconds": 20.0, "agent.fallbacks": 0}.items()]
        metrics += [Metric("train.loss", 2.0 / (step + 1), now, step) for step in range(0 if merge else series)]
        client.log_batch(run_id, metrics=metrics, params=[Param("learning_rate", "0.001")] if not merge else [Param("weight", "0.5")])
        client.set_terminated(run_id)
        ids.append(run_id)
    s.tracker.log_text(ids[-1], "Lessons: SFT on all helped most. Next: merge the two best models.", tr.MEMORY_ARTIFACT)
    return time.perf_counter() - started


def read(s: Scratch) -> dict:
    """What the exploration reads back before the agent decides."""
    from lamdagent import tracking as tr
    from lamdagent.agent.prompts import describe_model
    from lamdagent.exploration.runner import models_from_records

    records = s.tracker.children(s.parent, s.experiment_id)
    finished = [r for r in records if r.kind == "action" and r.status in (tr.Status.OK, tr.Status.FAILED, tr.Status.CACHED)]
    models = models_from_records(finished)
    memory = s.tracker.memory(finished[-1].run_id)
    lines = "\n".join(describe_model(m) for m in models)
    return {"records": len(records), "models": len(models), "memory_chars": len(memory), "prompt_chars": len(lines)}


def run(opts: Options) -> Result:
    result = Result(NAME, "reading the agent's history and memory from a store of 1,000 action runs")
    runs = 20 if opts.quick else 1000
    s = Scratch("demo", [])
    populate_s = populate(s, runs)
    read(s)  # warm-up (imports)
    times, shape = [], {}
    for _ in range(max(3, opts.repeats)):
        seconds, shape = timed(lambda: read(s))
        times.append(seconds)
    assert shape["records"] == runs and shape["models"] == runs, shape
    result.details = {"runs": runs, "populate_s": populate_s, "read_s": times, "read": shape}
    result.check(f"read history + memory, {runs} runs (median)", median(times), "s", below=TARGET_S)
    result.check("store populated in", populate_s, "s")
    shutil.rmtree(s.root, ignore_errors=True)
    return result
