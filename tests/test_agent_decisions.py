"""analysis/agent_decisions.py on a real store: a short compare-policies run of the hybrid and guided
against a local HTTP endpoint that overrides the hybrid's first proposal with a reason and accepts the
rest, and picks guided's last proposal; the report names who chose each action, the proposal the LLM
replaced and its reason. The demo's models score 0, so guided's two picks of another proposal gain
nothing and the third decision is the search's own, announced on the console."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from tests.conftest import FAST

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "analysis"))
import agent_decisions  # noqa: E402


def _overrides_once(request: dict) -> str:
    """The first verdict overrides with a fine-tune and a reason; later verdicts accept; objects take
    each slot's last value (sft(spec_arith, facts) here), guided's pick its last proposal; a memory
    request gets a short text."""
    response_format = request.get("response_format")
    if not response_format:
        return "Lessons: the merge did not help.\nNext: fine-tune."
    properties = response_format["json_schema"]["schema"]["properties"]
    if "decision" in properties:
        verdicts = sum("proposes this next action" in r["messages"][-1]["content"] for r in _overrides_once.requests)
        if verdicts == 1:  # this request is the first verdict
            return json.dumps({"decision": "sft", "reason": "the specialist is worth refining"})
        return json.dumps({"decision": "accept"})
    return json.dumps({key: spec["enum"][-1] for key, spec in properties.items() if "enum" in spec})


@pytest.mark.slow
@pytest.mark.ci  # the analysis script the README cites for which decisions the LLM changed
def test_the_report_names_the_origin_proposal_and_reason_of_each_decision(tracking_uri, tmp_path, fake_openai, capsys):
    from lamdagent.cli import main

    _overrides_once.requests = fake_openai.requests
    fake_openai.default = _overrides_once
    out = tmp_path / "compare"
    argv = ["compare-policies", "--study", "demo", "--policies", "hybrid,guided", "--seeds", "1", "--budget", "3", "--no-baselines", "--out", str(out),
            *FAST, "tasks=[arith]", "datasets=[arith,facts]", "data.test_size=20", "agent.backend=openai", "agent.model=fake-model",
            f"agent.base_url={fake_openai.base_url}", "agent.api_key_env=FAKE_KEY"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FAKE_KEY", "sk-test")
        assert main(argv) == 0
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("lamdagent/demo").experiment_id
    (group,) = client.search_runs([experiment], "tags.`lamdagent.kind` = 'comparison'")
    comparison_id = group.info.run_id

    explorations = {policy: (seed, rows) for policy, seed, rows in agent_decisions.decisions(comparison_id)}
    assert sorted(explorations) == ["guided", "hybrid"]
    seed, rows = explorations["hybrid"]
    assert seed == 0 and [r["iteration"] for r in rows] == [1, 2, 3]
    first, second, _ = rows
    assert [r["origin"] for r in rows] == ["override", "accepted", "accepted"]
    assert first["proposal"] and first["proposal"] != first["override"]  # the search's proposal the LLM replaced
    assert first["reason"] == "the specialist is worth refining" and not first["refusal"]
    assert first["pipeline"] == "sft(spec_arith, facts)" and first["override"].startswith("sft(model=spec_arith, dataset=facts")
    assert second["proposal"] == second["reason"] == ""  # an accepted proposal has nothing to explain
    assert all(r["score"] is not None and r["gain"] is not None for r in rows)
    guided, withdrawn = explorations["guided"][1][:2], explorations["guided"][1][2]
    picks = [r["origin"].split() for r in guided]  # "proposal k of n": the endpoint always picks the last
    assert all(p[0] == "proposal" and p[1] == p[3] for p in picks)
    assert all(bool(r["proposal"]) == (p[1] != "1") for r, p in zip(guided, picks)) and any(p[1] != "1" for p in picks)  # greedy's first, when changed
    assert withdrawn["origin"] == "proposal"  # the LLM's picks gained nothing: the search's first proposal, the LLM not asked
    assert "#3 guided: not asked: its 2 picks of another proposal gained +0.000 on average (nothing)" in " ".join(capsys.readouterr().out.split())
    text = agent_decisions.markdown(agent_decisions.decisions(comparison_id))
    assert "### hybrid, seed 0" in text and f"| hybrid | {first['origin']} | 1 |" in text and "| hybrid | accepted | 2 |" in text

    unknown = subprocess.run([sys.executable, str(ROOT / "analysis" / "agent_decisions.py"), "0" * 32], capture_output=True, text=True,
                             env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri})
    assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1 and unknown.stderr.startswith("error: ")
