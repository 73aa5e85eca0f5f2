"""Failed actions and a flaky endpoint are data, not crashes: one exploration meets a model that
emits nothing, NaN weights and a real NaN training loss, empty and malformed training data,
out-of-memory errors, HTTP 429/500/503, a dropped connection, a timeout and a malformed reply.
Each failed run is FAILED with its reason, the agent's memory prompt sees it, every retry and
fallback is counted, and after `max_consecutive_failures` the exploration stops cleanly."""

from __future__ import annotations

import io
import json
import shutil

import mlflow
import pytest
import torch
from mlflow import MlflowClient
from rich.console import Console
from safetensors.torch import load_file, save_file

from lamdagent.actions import ACTION_TYPES
from lamdagent.console import Display
from lamdagent.exploration.loop import start_or_resume
from lamdagent.tracking import Tracker
from tests.conftest import FAST
from tests.fake_openai import DROP, FakeOpenAI, Slow
from tests.test_explore import steps_agent

STEPS = {
    1: ("ties", {"model_a": "spec_arith", "model_b": "spec_facts", "weight": "0.5", "density": "0.5"}),  # -> emits nothing
    2: ("ties", {"model_a": "spec_arith", "model_b": "spec_choice", "weight": "0.5", "density": "0.5"}),  # -> NaN weights
    3: ("sft", {"model": "m2", "dataset": "arith", "learning_rate": "0.003"}),  # real NaN loss in TRL
    4: ("sft", {"model": "spec_arith", "dataset": "empty", "learning_rate": "0.003"}),
    5: ("sft", {"model": "spec_arith", "dataset": "broken", "learning_rate": "0.003"}),
    6: ("sft", {"model": "spec_facts", "dataset": "choice", "learning_rate": "0.003"}),  # MemoryError
    7: ("sft", {"model": "spec_choice", "dataset": "facts", "learning_rate": "0.003"}),  # torch.OutOfMemoryError
    8: ("sft", {"model": "base", "dataset": "all", "learning_rate": "0.003"}),  # never reached
}
ENDPOINT_FAULTS = {  # (iteration, step) -> replies served before the agent's own
    (1, "type"): [(429, "slow down"), (500, "oops"), DROP],
    (4, "objects"): [Slow(4.0, "")],  # past agent.request_timeout=1
    (5, "type"): ["I would fine-tune."],  # malformed: re-asked
    (6, "memory"): [(503, "down")] * 4,  # past agent.request_retries=3: the memory falls back to a summary
}


def flaky(steps, faults):
    agent = steps_agent(steps)

    def reply(request):
        prompt = request["messages"][0]["content"]
        if "Write the updated notes" in prompt:
            key = (int(prompt.split("New experiment (iteration ")[1].split(" ")[0]), "memory")
        else:
            key = (int(prompt.split("Iteration ")[1].split(" ")[0]), "type" if "Choose the TYPE" in prompt else "objects")
        queue = faults.get(key)
        if queue:
            return queue.pop(0)
        return f"Lessons: iteration {key[0]} done.\nNext: keep going." if key[1] == "memory" else agent(request)

    return reply


def _rewrite(src, dst, value: float):
    """A copy of a model folder with every weight set to `value`."""
    shutil.copytree(src, dst)
    for file in dst.glob("*.safetensors"):
        save_file({k: torch.full_like(t, value) for k, t in load_file(file).items()}, file, metadata={"format": "pt"})
    return dst


@pytest.mark.slow
@pytest.mark.ci  # CI's failures as data: the base alone, two actions that fail fast, a flaky endpoint
def test_two_failures_in_a_row_are_data_and_stop_the_exploration_cleanly(tracking_uri, tmp_path, monkeypatch):
    sft = ACTION_TYPES["sft"]
    sft_run = sft.run

    def out_of_memory(self, bindings, ctx):
        if bindings["dataset"].name == "arith":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return sft_run(self, bindings, ctx)

    steps = {1: ("sft", {"model": "base", "dataset": "empty", "learning_rate": "0.003"}),
             2: ("sft", {"model": "base", "dataset": "arith", "learning_rate": "0.003"})}
    faults = {(1, "type"): [(429, "slow down"), (500, "oops")], (2, "objects"): ["I would fine-tune."]}  # retried; re-asked
    (tmp_path / "empty.json").write_text('{"conversations": [{"from": "human", "value": "no assistant turn"}]}\n')
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setattr(sft, "run", out_of_memory)
    with FakeOpenAI(default=flaky(steps, faults)) as agent:
        display = Display(Console(file=io.StringIO(), width=200))
        with display:
            run_id, records, _ = start_or_resume("demo", [*FAST, "specialists=false", "tasks=[arith]", "datasets=[arith,empty]",
                                                          f"training_data.empty.source=json:{tmp_path / 'empty.json'}", "agent.backend=openai",
                                                          "agent.model=fake", f"agent.base_url={agent.base_url}", "agent.request_retries=3",
                                                          "agent.max_retries=1", "iterations=3", "max_consecutive_failures=2"], None, Tracker(), display)
        memory_prompts = [p for p in agent.prompts() if "Write the updated notes" in p]
    log = " ".join(display.console.file.getvalue().split())

    actions = [r for r in records if r.kind == "action"]
    assert [(r.iteration, r.status, r.error) for r in actions] == [(1, "failed", "dataset 'empty' is empty"),
                                                                  (2, "failed", "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB")]
    assert "stopping: the last 2 actions failed" in log
    client = MlflowClient()
    assert client.get_run(run_id).info.status == "FINISHED"
    assert len(memory_prompts) == 2
    for action, prompt in zip(actions, memory_prompts):
        run = client.get_run(action.run_id)
        assert run.info.status == "FAILED" and run.data.tags["lamdagent.error"] == action.error
        assert "Traceback" in mlflow.artifacts.load_text(f"runs:/{action.run_id}/error.txt")
        assert f"FAILED ({action.error}" in prompt  # what the agent learns from
    assert sum(m.value for m in client.get_metric_history(run_id, "agent.endpoint_retries")) == 2  # 429, 500
    assert sum(m.value for m in client.get_metric_history(run_id, "agent.retries")) == 1  # the malformed reply, re-asked
    assert sum(m.value for m in client.get_metric_history(run_id, "agent.fallbacks")) == 0


@pytest.mark.slow
def test_failed_actions_and_endpoint_errors_are_data(tracking_uri, tmp_path, monkeypatch):
    ties, sft = ACTION_TYPES["ties"], ACTION_TYPES["sft"]
    ties_run, sft_run = ties.run, sft.run
    made = iter([0.0, float("nan")])  # the first merge emits nothing, the second has NaN weights

    def bad_merge(self, bindings, ctx):
        out = ties_run(self, bindings, ctx)
        _rewrite(out.model_dir, ctx.out_dir / "bad", next(made))
        shutil.rmtree(out.model_dir)
        (ctx.out_dir / "bad").rename(out.model_dir)
        return out

    def out_of_memory(self, bindings, ctx):
        if bindings["model"].name == "spec_facts" and bindings["dataset"].name == "choice":
            raise MemoryError()
        if bindings["model"].name == "spec_choice" and bindings["dataset"].name == "facts":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return sft_run(self, bindings, ctx)

    (tmp_path / "empty.json").write_text('{"conversations": [{"from": "human", "value": "no assistant turn"}]}\n')
    (tmp_path / "broken.json").write_text('{"conversations": [{"from": "human", "value": "hi"}\n')
    data = [f"training_data.empty.source=json:{tmp_path / 'empty.json'}", f"training_data.broken.source=json:{tmp_path / 'broken.json'}",
            "datasets=[arith,choice,facts,all,empty,broken]"]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI(default=flaky(STEPS, ENDPOINT_FAULTS)) as agent:
        # the start-up check and the seeds are built before the actions are broken
        agent_cfg = ["agent.backend=openai", "agent.model=fake", f"agent.base_url={agent.base_url}", "agent.request_timeout=1",
                     "agent.request_retries=3", "agent.max_retries=1"]
        monkeypatch.setattr(ties, "run", bad_merge)
        monkeypatch.setattr(sft, "run", out_of_memory)
        display = Display(Console(file=io.StringIO(), width=200))
        with display:
            run_id, records, _ = start_or_resume("demo", [*FAST, *data, *agent_cfg, "iterations=8", "max_consecutive_failures=5"], None,
                                                 Tracker(), display)
        memory_prompts = {int(p.split("New experiment (iteration ")[1].split(" ")[0]): p for p in agent.prompts() if "Write the updated notes" in p}
    log = display.console.file.getvalue()

    actions = [r for r in records if r.kind == "action"]
    assert [r.iteration for r in actions] == [1, 2, 3, 4, 5, 6, 7]  # stopped cleanly after 5 failures in a row
    assert "stopping: the last 5 actions failed" in " ".join(log.split())
    client = MlflowClient()
    assert client.get_run(run_id).info.status == "FINISHED"
    silent, nan_model = actions[0], actions[1]
    assert silent.status == "ok" and silent.score == 0.0
    predictions = json.loads(mlflow.artifacts.load_text(f"runs:/{silent.run_id}/predictions/val/arith.json"))
    assert {row["generation"] for row in predictions} == {""}  # the model emits nothing: scored 0, not a crash
    assert nan_model.status == "ok" and nan_model.score == 0.0
    errors = {r.iteration: r.error for r in actions if r.status == "failed"}
    assert errors[3] == "training loss became NaN or infinite"
    assert errors[4] == "dataset 'empty' is empty"
    assert errors[5].startswith("DatasetGenerationError")
    assert errors[6] == "MemoryError"
    assert errors[7].startswith("OutOfMemoryError: CUDA out of memory")
    for iteration, error in errors.items():
        run = client.get_run(actions[iteration - 1].run_id)
        assert run.info.status == "FAILED" and run.data.tags["lamdagent.error"] == error
        assert "Traceback" in mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/error.txt")
        assert f"FAILED ({error}" in memory_prompts[iteration]  # what the agent learns from

    def total(name):
        return sum(m.value for m in client.get_metric_history(run_id, name))

    assert total("agent.endpoint_retries") == 3 + 1 + 3  # 429, 500, drop; a timeout; 503 x3
    assert total("agent.retries") == 1 and total("agent.fallbacks") == 0
    assert total("agent.memory_fallbacks") == 1
    assert "Lessons (the agent's own notes):\nLast (iteration 6)" in mlflow.artifacts.load_text(f"runs:/{actions[5].run_id}/agent/memory.txt")
    assert client.get_run(actions[4].run_id).data.metrics["agent.retries"] == 1
