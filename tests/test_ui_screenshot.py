"""The MLflow UI in a real headless Chromium: analysis/ui_screenshot.py against a small store built
through the tool's own tracking code (no training), shot from a new browser profile with nothing
preset; the test asserts on what each page shows (analysis/ui_screenshot.py's checks). The end-to-end
test is slow (~2.5 min on 2 busy cores) and skips without chromium (fails in CI: LAMDAGENT_CI_REQUIRE)."""

from __future__ import annotations

import contextlib
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
    """A tiny study written through the tool's own tracking code (no training) in `tmp_path` (its
    artifacts too): runs, LoggedModels with params, metrics and datasets, registry versions scored
    (the `best` alias), descriptions, pipeline drawings and the study's shared runs views. An SFT
    model's run holds its training curve (train.loss by step) and costs besides its final loss."""
    with contextlib.chdir(tmp_path):  # the experiment's artifact location: ./mlruns
        return _small_store(tmp_path)


TRAIN_CURVE = [(1, 2.0), (2, 1.4), (3, 1.1)]  # an SFT model's train.loss by step; its final loss is 1.1


def _small_store(tmp_path: Path) -> tuple[str, dict[str, str]]:
    from lamdagent.exploration.presenting import Presenter, study_note
    from lamdagent.space import ModelObject
    from lamdagent.tracking import Kind, Tracker
    from lamdagent.tracking.models import Measured, dataset

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    exp = tracker.experiment("tiny")
    tracker.models.describe_study(exp, study_note(exp, "tiny", "lamdagent-tiny"))
    parent = tracker.start_exploration(exp, "tiny", {}, {}, run_name="exploration")
    tracker.models.share_runs_view(exp, ["metrics.`best.val.score`", "metrics.`val.score`", "metrics.`val.arith`", "metrics.`val.facts`",
                                         "tags.`lamdagent.pipeline`"], parent)
    val = dataset("tiny-val", "tiny/val", [{"task": "arith", "prompt": "1+1=", "gold": "2"}, {"task": "facts", "prompt": "Q", "gold": "A"}], "val")
    train = dataset("tiny-all", "all/train", [{"prompt": "1+1=", "completion": "2"}] * 3, "train")
    presenter = Presenter(tracker, exp)
    ids: dict[str, str] = {}
    made: dict[str, ModelObject] = {}
    spec = [  # name, kind, action type, inputs, pipeline, scores (arith, facts)
        ("base", Kind.SEED, None, [], "base", (0.0, 0.0)),
        ("spec_arith", Kind.SEED, "sft", ["base"], "sft(base, arith)", (0.7, 0.0)),
        ("spec_facts", Kind.SEED, "sft", ["base"], "sft(base, facts)", (0.0, 0.4)),
        ("m1", Kind.ACTION, "ties", ["spec_arith", "spec_facts"], "ties(spec_arith, spec_facts)", (0.5, 0.3)),
        ("m2", Kind.ACTION, "sft", ["m1"], "sft(ties(spec_arith, spec_facts), all)", (0.6, 0.35)),
    ]
    for it, (name, kind, action, inputs, pipeline, (ra, rf)) in enumerate(spec):
        tags = {"pipeline": pipeline, "inputs": json.dumps([ids[i] for i in inputs]), **({"action_type": action} if action else {})}
        rid = tracker.start_child(parent, kind, max(0, it - 2), name, tags, experiment_id=exp)
        ids[name] = rid
        folder = tmp_path / "models" / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        registered = tracker.log_model(rid, exp, folder, "lamdagent-tiny", name, tags={"lamdagent.pipeline": pipeline})
        score = ra / 0.7 + rf / 0.4
        model = ModelObject(name, rid, registered["model_id"], name, pipeline, "llama", {"arith": ra, "facts": rf}, score,
                            parents=[made[i] for i in inputs])
        made[name] = model
        tracker.models.describe(rid, model.model_id, {"action_type": action or "base", "pipeline": pipeline}, [train] if action == "sft" else [],
                                [val], [made[i].model_id for i in inputs])
        presenter.labels[rid] = {"sft": "sft(all, lr=0.001)", "ties": "ties(w=0.5, d=0.5)"}.get(action, "base model")
        presenter.draw(model)
        tracker.models.note(rid, presenter.describe(model, registered), model.model_id)
        tracker.models.score_version("lamdagent-tiny", registered["model_version"], score, pipeline, name)
        trained = {"train.loss": TRAIN_CURVE[-1][1], "train.steps": 3.0} if action == "sft" else {}
        tracker.log(rid, metrics={"val.arith": ra, "val.facts": rf, "val.score": score, "cost.seconds": 1.5, **trained},
                    params={"learning_rate": "0.001" if action == "sft" else "-"}, series={"train.loss": TRAIN_CURVE} if trained else None,
                    tags=registered, measured=Measured(model.model_id, dict.fromkeys(["val.arith", "val.facts", "val.score"], val)), finish="ok")
        tracker.log(parent, metrics={"best.val.score": max(m.score for m in made.values())}, step=max(0, it - 2))
    _decision_trace(exp, ids["m2"], parent)
    tracker.close(parent)
    return uri, ids


def _decision_trace(experiment_id: str, run_id: str, exploration: str) -> None:
    """The agent's decision of m2 as the loop traces it (tracking/traces.py): a `decide` trace on the
    run, a CHAIN span per step, a CHAT_MODEL span per request with token counts."""
    from lamdagent.tracking import tag, traces

    prompt = "You are optimising a post-training pipeline... Choose the next action type."
    with traces.trace("decide", experiment_id=experiment_id, run_id=run_id, inputs={"iteration": 2, "action_types": ["sft", "ties"]},
                      tags={tag("iteration"): "2", tag("trace"): "decide", tag("exploration"): exploration, tag("policy"): "llm"}) as root:
        for step, reply in (("action_type", '{"action_type": "sft"}'), ("objects", '{"model": "m1", "dataset": "all"}')):
            with traces.span(step, "CHAIN", inputs={"prompt": prompt, "options": 2}) as chain:
                with traces.span("chat.completions", inputs={"messages": [{"role": "user", "content": prompt}]}, model="qwen2.5-1.5b-instruct",
                                 attempt=0, structured_form="json_schema") as request:
                    request.outputs({"reply": reply})
                    request.usage(812, 9)
                chain.outputs({"choice": reply})
        root.outputs({"pipeline": "sft(ties(spec_arith, spec_facts), all)", "fallbacks": []})
    traces.flush()


def test_pick_runs_and_urls(tmp_path):
    uri, ids = small_store(tmp_path)
    sel = ui_screenshot.pick_runs(uri, "lamdagent/tiny", n_compare=3)
    assert sel.run_id == ids["m2"] and sel.run_name == "m2"  # the best val.score
    assert sel.compare[:2] == [ids["m2"], ids["m1"]] and sel.compare[2] in (ids["spec_arith"], ids["spec_facts"])
    assert sel.val_metrics == ["val.score", "val.arith", "val.facts"]
    assert sel.image_artifact == "pipeline.png"
    assert len(sel.parents) == 1 and sel.parent_name == "exploration"
    assert sel.inputs == [ids["m1"]] and sel.val_dataset == "tiny/val" and sel.registered_model == "lamdagent-tiny" and sel.version == "5"
    pages = {p["name"]: p for p in ui_screenshot.pages("http://h:1", sel)}
    e = sel.experiment_id
    assert pages["landing"]["url"] == f"http://h:1/#/experiments/{e}"  # where a visitor lands from the experiments list
    assert pages["runs"]["url"] == f"http://h:1/#/experiments/{e}/runs?viewStateShareKey=lamdagent&workflowType=machine_learning"
    assert pages["run"]["url"] == f"http://h:1/#/experiments/{e}/runs/{ids['m2']}?workflowType=machine_learning"
    assert pages["run-artifact"]["url"].endswith(f"/runs/{ids['m2']}/artifactPath/pipeline.png?workflowType=machine_learning")
    assert sel.traces and pages["run-traces"]["url"] == f"http://h:1/#/experiments/{e}/runs/{ids['m2']}/traces?workflowType=machine_learning"
    assert pages["logged-model"]["url"].startswith(f"http://h:1/#/experiments/{e}/models/m-")
    assert pages["registry"]["url"] == "http://h:1/#/models/lamdagent-tiny"
    assert pages["compare"]["url"].startswith("http://h:1/#/compare-runs?runs=%5B%22")
    ranked = f"http://h:1/#/experiments/{e}/runs?viewStateShareKey=lamdagent-by-score&workflowType=machine_learning"  # as `lamdagent ui` prints it
    assert pages["runs-by-score"]["url"] == pages["click-path"]["url"] == ranked
    assert list(pages)[0] == "click-path" and pages["click-path"]["max_clicks"] == 2  # first, in the new profile
    assert all("storage" not in p for p in pages.values())  # nothing preset in the browser
    with pytest.raises(SystemExit, match="no experiment"):
        ui_screenshot.pick_runs(uri, "lamdagent/nope")


@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.requires("chromium")
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
    assert names == {"click-path", "landing", "runs", "runs-by-score", "run", "run-artifact", "run-traces", "logged-model", "models", "registry", "compare"}
    assert ids["m2"] in proc.stdout
    checks = json.loads((out / "checks.json").read_text())
    failed = [f"{page}: {name}" for page, found in checks.items() for name, ok in found.items() if not ok]
    assert not failed, failed  # what each page shows: the runs table with the score and pipeline columns, the drawing, ...
    assert {"score column", "pipeline column"} <= checks["runs"].keys() and "drawing" in checks["run-artifact"]
    assert "registered version linked" in checks["logged-model"] and "best alias" in checks["registry"]
    assert "decision trace listed" in checks["run-traces"]
    assert checks["click-path"] == {"best model ranked first": True, "reached in at most 2 clicks": True}  # from the printed link
    for name in names:
        img = mpimg.imread(out / f"{name}.png")
        assert img.shape[:2] == (900, 1280), (name, img.shape)
        assert img[..., :3].std() > 0.02, f"{name}.png is blank"
