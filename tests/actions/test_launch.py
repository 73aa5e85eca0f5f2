"""Training through `accelerate launch` on the CPU: one process matches in-process training, two
processes run DDP (gloo), a failing worker is one ActionFailed line, bad configs are UserErrors."""

import json
import math
from pathlib import Path

import pytest
from safetensors.torch import load_file

from lamdagent.actions import ACTION_TYPES
from lamdagent.config import load_config
from lamdagent.config.schema import LaunchConfig
from lamdagent.errors import ActionFailed, UserError
from lamdagent.evaluation.tasks import load_task
from lamdagent.models import flops
from lamdagent.models.folders import is_adapter
from lamdagent.space import PreferenceDatasetObject
from lamdagent.training.launch import accelerate_command
from lamdagent.training.spec import LoraSettings
from tests.helpers import base_model, context, dataset

ONE = LaunchConfig(launcher="accelerate", num_processes=1, args=["--cpu"])
# the shipped DDP config: torchrun starts the workers, which find no GPU and train with gloo on the CPU
TWO = LaunchConfig(launcher="accelerate", accelerate_config=str(Path(__file__).parents[2] / "conf/accelerate/ddp.yaml"), num_processes=2)


@pytest.fixture(autouse=True)
def _cpu_only(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the workers train on the CPU wherever the tests run


def _sft(tmp_path, launch, size=32):
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(learning_rate=[3e-3], epochs=1))
    ctx = context(tmp_path)
    ctx.launch = launch
    steps = []
    ctx.on_step = lambda step, total: steps.append((step, total))
    out = sft.run({"model": base_model(), "dataset": dataset("arith", size), "learning_rate": 3e-3}, ctx)
    return out, steps


def _weights(model_dir):
    return load_file(model_dir / "model.safetensors")


def test_a_bad_training_section_is_one_line_before_any_compute(tmp_path):
    LaunchConfig().check()
    with pytest.raises(UserError, match=r"training.launcher.*Invalid value 'torchrun', expected one of \['inprocess', 'accelerate'\]"):
        load_config("demo", ["training.launcher=torchrun"])
    with pytest.raises(UserError, match="num_processes must be >= 1"):
        LaunchConfig(launcher="accelerate", num_processes=0).check()
    with pytest.raises(UserError, match="does not exist"):
        load_config("demo", ["training.launcher=accelerate", f"training.accelerate_config={tmp_path / 'missing.yaml'}"])


def test_accelerate_command_passes_the_config_through(tmp_path):
    config = tmp_path / "fsdp.yaml"
    config.write_text("distributed_type: FSDP\n")
    cmd = accelerate_command(LaunchConfig("accelerate", str(config), 8, ["--mixed_precision", "bf16"]), tmp_path / "spec.json")
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[3:7] == ["--config_file", str(config), "--num_processes", "8"]
    assert cmd[7] == "--main_process_port" and int(cmd[8]) > 0  # a free port: concurrent launches do not collide
    assert cmd[9:] == ["--mixed_precision", "bf16", "-m", "lamdagent.training.worker", str(tmp_path / "spec.json")]
    config.write_text("distributed_type: FSDP\nmain_process_port: 29555\n")
    assert "--main_process_port" not in accelerate_command(LaunchConfig("accelerate", str(config), 8), tmp_path / "spec.json")


@pytest.mark.slow
def test_sft_through_accelerate_matches_in_process_training(tmp_path):
    with flops.counting() as in_worker:
        launched, steps = _sft(tmp_path / "launched", ONE)
    with flops.counting() as in_process:
        here, _ = _sft(tmp_path / "here", None)
    assert in_worker.total == in_process.total > 0  # the worker's operations reach the parent's count
    assert math.isfinite(launched.metrics["train.loss"]) and launched.loaded is None and here.loaded is not None
    assert launched.metrics == here.metrics and launched.step_metrics == here.step_metrics
    assert steps == [(1, 2), (2, 2)]  # progress reaches the parent
    trained, base = _weights(launched.model_dir), _weights(base_model().path)
    assert any(not trained[k].equal(base[k]) for k in base)
    assert all(trained[k].equal(w) for k, w in _weights(here.model_dir).items())  # one CPU process: the same weights
    assert sorted(p.name for p in launched.model_dir.iterdir()) == sorted(p.name for p in here.model_dir.iterdir())


@pytest.mark.slow
def test_two_processes_share_the_batches(tmp_path):
    out, steps = _sft(tmp_path, TWO)  # 32 rows, batch 16 per process: one step instead of two
    result = json.loads((tmp_path / "launch" / "result.json").read_text())
    assert result["processes"] == 2 and result["distributed"] == "MULTI_CPU" and out.metrics["train.steps"] == 1 and steps == [(1, 1)]
    assert math.isfinite(out.metrics["train.loss"]) and out.metrics["train.tokens"] > 0
    trained, base = _weights(out.model_dir), _weights(base_model().path)
    assert any(not trained[k].equal(base[k]) for k in base)


@pytest.mark.slow
def test_dpo_lora_through_accelerate(tmp_path):
    dpo = ACTION_TYPES["dpo"](ACTION_TYPES["dpo"].Settings(epochs=1, on_policy=True, lora=LoraSettings(enabled=True)))
    ctx = context(tmp_path)
    ctx.launch = ONE
    base = base_model()
    preferences = PreferenceDatasetObject("facts_prefs", [load_task("facts")], 16)
    out = dpo.run({"model": base, "preference_dataset": preferences, "beta": 0.1, "learning_rate": 1e-2}, ctx)
    assert is_adapter(out.model_dir) and out.adapter_base is base and out.loaded is None
    assert out.metrics["train.pairs"] == 16 and out.metrics["train.steps"] == 1 and out.metrics["train.tokens"] > 0
    assert math.isfinite(out.metrics["train.loss"]) and "train.rewards_margins" in out.step_metrics


def test_a_failing_worker_is_one_action_failed_line(tmp_path):
    model = base_model()
    model.path = tmp_path / "no-such-model"
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(epochs=1))
    ctx = context(tmp_path / "out")
    ctx.launch = ONE
    with pytest.raises(ActionFailed) as failed:
        sft.run({"model": model, "dataset": dataset("arith", 4), "learning_rate": 1e-3}, ctx)
    message = str(failed.value)
    assert "\n" not in message and "exited with code 1" in message and "no-such-model" in message, message
    assert (tmp_path / "out" / "launch" / "output.log").exists()
