"""`lamdagent ui` (docs/ui.md) on a demo store (tests/test_ui_screenshot.small_store: written through
the tool's own tracking code, no training): it serves the MLflow UI and prints the links that matter;
followed in headless Chromium from a new profile, each page shows what its link names, and the best
model's LoggedModel is two real clicks from the ranked models. The other commands end with the same
links, or with the command that serves them. A LoggedModel carries the model's own metrics only. Bad
input is one line each."""

from __future__ import annotations

import io
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient
from rich.console import Console

from lamdagent.cli.main import main
from lamdagent.cli.ui import print_study_links
from lamdagent.tracking import Kind, Status, Tracker
from lamdagent.tracking.ui_links import UI_ENV
from tests.test_ui_screenshot import CHROMIUM, TRAIN_CURVE, small_store, ui_screenshot

M2_SCORE = 0.6 / 0.7 + 0.35 / 0.4  # small_store's best model


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return small_store(tmp_path_factory.mktemp("ui-store"))


def _free_port() -> int:
    return ui_screenshot.free_port()


def test_the_links_name_the_ranked_models_and_the_best_model(store):
    uri, ids = store
    tracker = Tracker(uri)
    links = tracker.models.study_links(tracker.find_experiment("tiny"), "tiny")
    e, best = links.experiment_id, links.best
    assert (best.name, best.run_id, best.registered_model, best.version) == ("m2", ids["m2"], "lamdagent-tiny", "5")
    assert best.score == pytest.approx(M2_SCORE) and best.model_id.startswith("m-")
    assert links.urls("http://h:9") == [
        ("models by val.score", f"http://h:9/#/experiments/{e}/runs?viewStateShareKey=lamdagent-by-score&workflowType=machine_learning"),
        ("best model m2, val.score 1.7321: its run", f"http://h:9/#/experiments/{e}/runs/{ids['m2']}?workflowType=machine_learning"),
        ("best model m2: its LoggedModel", f"http://h:9/#/experiments/{e}/models/{best.model_id}?workflowType=machine_learning"),
        ("registry lamdagent-tiny@best (v5)", "http://h:9/#/models/lamdagent-tiny/versions/5"),
    ]
    # a study without the shared views or a registered model: the runs sorted by URL, the top run is the best
    bare = tracker.experiment("bare")
    run = tracker.start_child(tracker.start_exploration(bare, "bare", {}, {}), Kind.ACTION, 1, "m1", {}, experiment_id=bare)
    tracker.log(run, metrics={"val.score": 0.5}, finish=Status.OK)
    links = tracker.models.study_links(bare, "bare")
    assert links.ranked == (f"#/experiments/{bare}/runs?searchFilter=metrics.%60val.score%60+%3E+-1&orderByKey=metrics.%60val.score%60"
                            "&orderByAsc=false&workflowType=machine_learning")
    assert [what for what, _ in links.pages()] == ["models by val.score", "best model m1, val.score 0.5000: its run"]


def test_the_logged_model_carries_the_models_own_metrics_and_its_run_the_curve(store):
    """Per-step train.loss and the costs stay on the run (its chart); the LoggedModel's metrics table
    holds one row per metric of the model: val.* on their dataset, its final training loss."""
    uri, ids = store
    client = MlflowClient(uri)
    run = client.get_run(ids["m2"])
    model = client.get_logged_model(run.data.tags["lamdagent.model_id"])
    assert sorted(m.key for m in model.metrics) == ["train.loss", "val.arith", "val.facts", "val.score"]
    assert {m.key: m.value for m in model.metrics}["train.loss"] == TRAIN_CURVE[-1][1]
    assert {m.key: m.dataset_name for m in model.metrics}["val.score"] == "tiny/val"
    assert sorted((m.step, m.value) for m in client.get_metric_history(ids["m2"], "train.loss"))[1:] == TRAIN_CURVE
    assert {"cost.seconds", "train.steps", "val.score"} <= run.data.metrics.keys()


def _one_line_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert out.startswith("error: ") and "Traceback" not in out
    assert len(out.strip().splitlines()) <= 2, out  # one message (wrapped at most once at the console's 160 columns)
    return " ".join(out.split())


def test_bad_input_is_one_line_each(store, tmp_path, capsys):
    uri, _ = store
    assert "no study 'nope' in the tracking store" in _one_line_error(["ui", "--study", "nope", "--tracking-uri", uri], capsys)
    missing = tmp_path / "nowhere.db"
    assert f"no tracking store at {missing}" in _one_line_error(["ui", "--tracking-uri", f"sqlite:///{missing}"], capsys)
    assert not missing.exists()  # not created empty
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        said = _one_line_error(["ui", "--study", "tiny", "--tracking-uri", uri, "--port", str(port)], capsys)
    assert f"port {port} on 127.0.0.1 is in use" in said and "--port" in said
    assert "--port must be between 1 and 65535, got 0" in _one_line_error(["ui", "--study", "tiny", "--tracking-uri", uri, "--port", "0"], capsys)
    started = time.monotonic()
    said = _one_line_error(["ui", "--study", "tiny", "--tracking-uri", f"http://127.0.0.1:{_free_port()}"], capsys)
    assert "does not answer (Connection refused)" in said and time.monotonic() - started < 10


def test_without_a_ui_a_command_ends_with_the_command_that_serves_its_links(store, monkeypatch):
    uri, _ = store
    monkeypatch.setenv(UI_ENV, f"http://127.0.0.1:{_free_port()}")  # configured, nothing there (nor, here, at the default address)
    out = io.StringIO()
    print_study_links(Console(file=out, width=400), Tracker(uri), "tiny")
    assert out.getvalue().strip() == (f"MLflow UI: `lamdagent ui --study tiny --tracking-uri {uri}` serves the study's models ranked by "
                                      "val.score; the best model, m2, is two clicks from them")


def _printed_links(proc: subprocess.Popen, timeout: float = 120.0) -> tuple[str, dict[str, str]]:
    """What `lamdagent ui` printed until its links: the text and {what: URL}."""
    text, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        text += line
        if "registry lamdagent-tiny@best" in line:
            return text, dict(re.findall(r"^  (.+?)\s{2,}(http://\S+)$", text, re.M))
    raise AssertionError(f"no links printed: {text}")


@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.requires("chromium")
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install -y chromium (Debian) to run the UI check")
@pytest.mark.timeout(300)
def test_lamdagent_ui_prints_links_that_a_new_browser_follows(store, monkeypatch):
    uri, ids = store
    port = _free_port()
    # A suite started in the background ignores SIGINT, and a child inherits that: the Ctrl-C below would do nothing.
    # A handled signal is reset to its default in the child (no preexec_fn: it is unsafe with threads).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "lamdagent.cli.main", "ui", "--study", "tiny", "--tracking-uri", uri, "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    browser = None
    try:
        text, links = _printed_links(proc)
        base = f"http://127.0.0.1:{port}"
        assert f"MLflow UI of study tiny at {base} (light: no job workers" in text and "Ctrl-C stops it" in text
        ranked, run, model, registry = links.values()
        assert list(links) == ["models by val.score", "best model m2, val.score 1.7321: its run", "best model m2: its LoggedModel",
                               "registry lamdagent-tiny@best (v5)"]
        assert all(url.startswith(base + "/#/") for url in links.values())

        browser = ui_screenshot.Browser(CHROMIUM, 1280, 900)  # a new profile: nothing preset, the Assistant panel open
        best = Tracker(uri).models.study_links(Tracker(uri).find_experiment("tiny"), "tiny").best
        browser.goto(ranked)
        assert browser.wait_for(ui_screenshot.first_row_is("m2"), settle=0.5)
        clicks, reached = ui_screenshot.click_path(best)
        assert ui_screenshot.follow_clicks(browser, clicks, reached) == 2  # the best model's LoggedModel, two real clicks away

        browser.goto(ranked)  # the ranked models with their scores
        assert browser.wait_for(ui_screenshot.first_row_is("m2"), settle=0.5)
        rows = browser.evaluate(ui_screenshot.RANKED_ROWS)
        client = MlflowClient(uri)
        scores = {r.info.run_name: r.data.metrics["val.score"] for r in client.search_runs([client.get_run(best.run_id).info.experiment_id])
                  if "val.score" in r.data.metrics}  # every model of the study, nothing else
        assert sorted(r["name"] for r in rows) == sorted(scores) and rows[0]["name"] == "m2"
        shown = [float(r["score"]) for r in rows]
        assert shown == pytest.approx([scores[r["name"]] for r in rows]) and shown == sorted(shown, reverse=True)

        browser.goto(run)
        assert browser.wait_for(ui_screenshot._text("About this run"), settle=0.5)
        assert browser.evaluate(f"!!document.querySelector('a[href*=\"/models/{best.model_id}\"]')")  # its description links the LoggedModel

        browser.goto(model)  # the best model's LoggedModel: its metrics (one row each) and its registered version
        assert browser.wait_for(ui_screenshot._text("About this logged model"), settle=0.5)
        page = browser.evaluate("document.body.innerText")
        assert "Metrics (4)" in page and "train.loss" in page and "val.score" in page and "Model versions" in page
        assert browser.evaluate("!!document.querySelector('a[href*=\"/models/lamdagent-tiny/versions/5\"]')")

        browser.goto(registry)
        assert browser.wait_for(ui_screenshot.BEST, settle=0.5)
        assert "Version 5" in browser.evaluate("document.body.innerText")

        monkeypatch.setenv(UI_ENV, base)  # while it serves, the other commands end with the same links
        out = io.StringIO()
        print_study_links(Console(file=out, width=400), Tracker(uri), "tiny")
        assert f"In the MLflow UI ({base}):" in out.getvalue() and all(url in out.getvalue() for url in links.values())

        proc.send_signal(signal.SIGINT)  # Ctrl-C: the server stops with it
        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read().strip().endswith("MLflow UI stopped")
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing serves there any more
    finally:
        if browser:
            browser.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()

