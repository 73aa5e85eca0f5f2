"""The machine an exploration computes on is recorded, and a resume on another kind says so: a seed's
numbers reproduce on the same kind of machine only."""

import io
import json

import pytest
import torch
from mlflow import MlflowClient
from rich.console import Console

from lamdagent.console import Display
from lamdagent.exploration.loop import start_or_resume
from lamdagent.tracking import Tracker
from lamdagent.tracking.machine import differences, machine
from tests.conftest import FAST

BARE = [*FAST, "iterations=0", "specialists=false", "seed_models=[]", "screening.enabled=false"]  # the base only: no training


def another_capability() -> str:
    """A CPU capability other than this machine's (CI machines differ: some have AVX512)."""
    return "AVX2" if torch.backends.cpu.get_cpu_capability() == "AVX512" else "AVX512"


def test_the_machine_names_what_makes_the_numbers():
    found = machine()
    assert found["torch"] == torch.__version__ and found["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert found["threads"] == str(torch.get_num_threads()) and found["cpu"] and found["trl"] != "absent"
    other = {**found, "cpu_capability": another_capability(), "trl": "0.1"}
    assert differences(other, found) == [f"cpu_capability {another_capability()} -> {found['cpu_capability']}", f"trl 0.1 -> {found['trl']}"]
    assert differences(found, dict(found)) == []


def _explore(overrides, resume=None) -> tuple[str, str]:
    out = io.StringIO()
    with Display(Console(file=out, width=400)) as display:
        run_id, _, _ = start_or_resume("demo", overrides, resume, Tracker(), display)
    return run_id, out.getvalue()


@pytest.mark.slow
@pytest.mark.ci
def test_an_exploration_records_its_machine_and_a_resume_on_another_says_so(tracking_uri):
    run_id, _ = _explore(BARE)
    client = MlflowClient()
    assert json.loads(client.get_run(run_id).data.tags["lamdagent.machine"]) == machine()
    _, said = _explore([], resume=run_id)  # the same machine: nothing to say
    assert "another kind of machine" not in said and "lamdagent.resumed_on" not in client.get_run(run_id).data.tags

    elsewhere = {**machine(), "cpu_capability": another_capability()}
    client.set_tag(run_id, "lamdagent.machine", json.dumps(elsewhere))  # as if it had started on another CPU
    _, said = _explore([], resume=run_id)
    assert f"started on another kind of machine (cpu_capability {another_capability()} -> {machine()['cpu_capability']})" in said
    assert json.loads(client.get_run(run_id).data.tags["lamdagent.resumed_on"]) == machine()
