"""The MLflow UI in a real headless Chromium: analysis/ui_screenshot.py against a small store built
here (no training: runs, tags and metrics shaped like an exploration's, a pipeline drawing artifact).
The end-to-end test is slow (~2.5 min on 2 busy cores) and skips without chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "analysis"))
import ui_screenshot  # noqa: E402

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def small_store(tmp_path: Path) -> tuple[str, dict[str, str]]:
    from mlflow import MlflowClient

    from lamdagent.reporting.figures import PipelineNode, pipeline_dag

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("lamdagent/tiny", artifact_location=(tmp_path / "artifacts").as_uri(),
                                   tags={"mlflow.experimentKind": "custom_model_development", "lamdagent.study": "tiny"})
    parent = client.create_run(exp, run_name="exploration", tags={"lamdagent.kind": "exploration"}).info.run_id
    ids: dict[str, str] = {}
    spec = [  # name, kind, action type, inputs, pipeline, scores (arith, facts)
        ("base", "seed", None, [], "base", (0.0, 0.0)),
        ("spec_arith", "seed", "sft", ["base"], "sft(base, arith)", (0.7, 0.0)),
        ("spec_facts", "seed", "sft", ["base"], "sft(base, facts)", (0.0, 0.4)),
        ("m1", "action", "ties", ["spec_arith", "spec_facts"], "ties(spec_arith, spec_facts)", (0.5, 0.3)),
        ("m2", "action", "sft", ["m1"], "sft(ties(spec_arith, spec_facts), all)", (0.6, 0.35)),
    ]
    for it, (name, kind, action, inputs, pipeline, (ra, rf)) in enumerate(spec):
        tags = {"mlflow.parentRunId": parent, "lamdagent.kind": kind, "lamdagent.name": name, "lamdagent.pipeline": pipeline,
                "lamdagent.iteration": str(max(0, it - 2)), "lamdagent.status": "ok",
                "lamdagent.inputs": json.dumps([ids[i] for i in inputs])}
        if action:
            tags["lamdagent.action_type"] = action
        rid = client.create_run(exp, run_name=name, tags=tags).info.run_id
        ids[name] = rid
        client.log_metric(rid, "val.arith", ra)
        client.log_metric(rid, "val.facts", rf)
        client.log_metric(rid, "val.score", ra / 0.7 + rf / 0.4)
        client.log_param(rid, "learning_rate", "0.001" if action == "sft" else "-")
        client.set_terminated(rid)
    nodes = [PipelineNode(ids[n], n, a or "", None, [ids[i] for i in inp]) for n, _, a, inp, _, _ in spec]
    png = pipeline_dag(nodes, tmp_path / "pipeline.png", title=spec[-1][4])
    client.log_artifact(ids["m2"], str(png), "figures")
    client.set_terminated(parent)
    return uri, ids


def test_pick_runs_and_urls(tmp_path):
    uri, ids = small_store(tmp_path)
    sel = ui_screenshot.pick_runs(uri, "lamdagent/tiny", n_compare=3)
    assert sel.run_id == ids["m2"] and sel.run_name == "m2"  # the best val.score
    assert sel.compare[:2] == [ids["m2"], ids["m1"]] and sel.compare[2] in (ids["spec_arith"], ids["spec_facts"])
    assert sel.val_metrics == ["val.score", "val.arith", "val.facts"]
    assert sel.image_artifact == "figures/pipeline.png"
    assert len(sel.parents) == 1
    pages = {p["name"]: p for p in ui_screenshot.pages("http://h:1", sel)}
    e = sel.experiment_id
    assert pages["runs"]["url"] == f"http://h:1/#/experiments/{e}/runs"
    assert pages["run"]["url"] == f"http://h:1/#/experiments/{e}/runs/{ids['m2']}"
    assert pages["run-artifact"]["url"].endswith(f"/runs/{ids['m2']}/artifactPath/figures/pipeline.png")
    assert "orderByKey=metrics.%60val.score%60&orderByAsc=false" in pages["runs-by-score"]["url"]
    assert pages["compare"]["url"].startswith("http://h:1/#/compare-runs?runs=%5B%22")
    state = json.loads(pages["runs"]["storage"][f'MLflowLocalStorage-1.1-ExperimentPage-["{e}"]-ReactComponentState'])
    assert state["runsExpanded"] == {sel.parents[0]: True}
    assert "metrics.`val.score`" in state["selectedColumns"]
    with pytest.raises(SystemExit, match="no experiment"):
        ui_screenshot.pick_runs(uri, "lamdagent/nope")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install -y chromium (Debian) to run the UI check")
@pytest.mark.timeout(600)
def test_ui_screenshots(tmp_path):
    uri, ids = small_store(tmp_path)
    out = tmp_path / "shots"
    proc = subprocess.run([sys.executable, str(ROOT / "analysis" / "ui_screenshot.py"), "--tracking-uri", uri,
                           "--experiment", "lamdagent/tiny", "--out", str(out), "--width", "1280", "--height", "900"],
                          capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "did not render" not in proc.stderr, proc.stderr
    names = {p.stem for p in out.glob("*.png")}
    # the best model (m2, val.score 1.73) carries a PNG: its artifact page is captured
    assert names == {"runs", "runs-by-score", "run", "run-artifact", "compare"}
    assert ids["m2"] in proc.stdout
    for name in names:
        img = mpimg.imread(out / f"{name}.png")
        assert img.shape[:2] == (900, 1280), (name, img.shape)
        assert img[..., :3].std() > 0.02, f"{name}.png is blank"
