"""Check the MLflow UI in a real headless browser, from a new profile with nothing preset: start
`mlflow server` on a store as `lamdagent ui` does, follow the printed link to the study's models
ranked by val.score with real clicks to the best model's LoggedModel (at most 2), and capture the
pages a visitor reaches: the study's runs view (as a tree, and sorted by val.score), its best model
run, that run's pipeline drawing (or artifact browser), its traces, its LoggedModel, the models,
the registry and the compare view (parallel coordinates over the val.* metrics).

    python analysis/ui_screenshot.py --tracking-uri sqlite:///mlflow.db --study demo --out ui-shots
    python analysis/ui_screenshot.py --tracking-uri sqlite:////tmp/s/mlflow.db --experiment lamdagent/demo \
        --run <run id> --compare 5 --width 1600 --height 1000

Writes a PNG and the text of each page (click-path.png: where the clicks led), checks.json (what each
page must show) and server.log into --out, and prints each page's URL. The store is only read.

Needs Debian's chromium (`apt-get install -y chromium`; .ci/run installs it). pip's
playwright/pyppeteer cannot download a browser offline, and no websocket library is installed, so the
browser is driven over the DevTools protocol on a pipe (--remote-debugging-pipe, stdlib only): it
clicks with the mouse (Input.dispatchMouseEvent at an element's centre, refused when something else
covers it), waits until each page has rendered, closes the Assistant panel as a visitor would (after
the click path, which leaves it open) and picks the parallel-coordinates metrics. The server runs on
127.0.0.1 at a free port with MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false (no job workers: ~370 MB
instead of ~1.8 GB) and is stopped at the end.

UI routes (MLflow 3.17's hash router, read from its JS bundle): `#/experiments/<id>/runs` (runs table;
nested runs drawn as a tree only in the default order, by creation time, and without a search filter),
`#/experiments/<id>/runs/<run id>` (overview), `.../runs/<run id>/artifacts` and
`.../runs/<run id>/artifactPath/<path>` (artifact browser), `#/compare-runs?runs=[...]&experiments=[...]`
(compare view). The runs view takes `orderByKey`, `orderByAsc`, `searchFilter` and
`compareRunsMode=CHART|TABLE` query parameters.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import fcntl
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone: its lamdagent
from lamdagent.cli.ui import serve  # noqa: E402
from lamdagent.tracking.ui_links import StudyLinks, absolute  # noqa: E402

MODEL_KINDS = ("action", "seed", "baseline", "replay")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(tracking_uri: str, port: int, timeout: float = 120.0, log: Path | None = None):
    """`mlflow server` on 127.0.0.1:port over the store, as `lamdagent ui` starts it (job execution
    off); yields its base URL once /health answers, and stops it."""
    with serve(tracking_uri, "127.0.0.1", port, log=log, timeout=timeout) as (base, _):
        yield base


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: the
    browser reads JSON messages ending in NUL on fd 3 and writes on fd 4), so no websocket library is
    needed. Used to preset the UI's localStorage, wait until a page has rendered, and capture it."""

    def __init__(self, chromium: str, width: int = 1600, height: int = 1000):
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()

        def onto_3_and_4():
            # In the child: the browser's ends onto fds 3 and 4, through copies at fds >= 10 so that neither
            # clobbers the other. dup2 makes 3 and 4 inheritable; Python's own fds are not (PEP 446), so
            # close_fds=False passes nothing else.
            a = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
            b = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
               "--remote-debugging-pipe", f"--user-data-dir={self._profile.name}", f"--window-size={width},{height}",
               "about:blank"]
        self.proc = subprocess.Popen(cmd, preexec_fn=onto_3_and_4, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._id = 0
        self._buf = b""
        self.size = (width, height)
        try:
            self._attach(next(iter(self.tabs())))
        except BaseException:
            self.close()
            raise

    def tabs(self) -> list[str]:
        """The target ids of the browser's pages (tabs)."""
        return [t["targetId"] for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page"]

    def _attach(self, target: str) -> None:
        """Drive the tab `target` from now on."""
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Target.activateTarget", targetId=target)
        self.send("Page.enable", session=True)
        self.send("Runtime.enable", session=True)
        width, height = self.size
        self.send("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height, deviceScaleFactor=1, mobile=False)

    def follow_new_tab(self, before: list[str], wait: float = 3.0) -> bool:
        """A tab opened since `before` (a link with target=_blank, as MLflow renders a description's
        links), driven from now on, as a visitor looks at it. Whether one was opened."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            new = [t for t in self.tabs() if t not in before]
            if new:
                self._attach(new[0])
                return True
            time.sleep(0.2)
        return False

    def send(self, method: str, session: bool = False, timeout: float = 60.0, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError(f"no answer to {method} within {timeout:.0f} s")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk

    def evaluate(self, expression: str):
        try:  # None while the page is between documents
            res = self.send("Runtime.evaluate", session=True, expression=expression, returnByValue=True, awaitPromise=True)
        except RuntimeError:
            return None
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, settle: float = 1.5) -> bool:
        """Poll a JS expression until it is truthy; then let the page settle (animations, charts)."""
        deadline = time.monotonic() + timeout
        ok = False
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                ok = True
                break
            time.sleep(0.5)
        time.sleep(settle)
        return ok

    def goto(self, url: str) -> None:
        """Load url afresh (through about:blank: a change of the hash alone would not reload)."""
        self.send("Page.navigate", session=True, url="about:blank")
        self.send("Page.navigate", session=True, url=url)

    def click(self, selector: str) -> bool:
        """A real click, as a person's: the first element matching `selector` is scrolled into view
        (scrolling is no click) and the mouse is pressed and released at its centre. False when there
        is no such element or another one covers its centre (a pop-over, a fold): the click would
        land there instead, so it is not made."""
        at = self.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;
            e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
            const x = r.left + r.width / 2, y = r.top + r.height / 2, hit = document.elementFromPoint(x, y);
            return hit && (hit === e || e.contains(hit)) ? [x, y] : null }})()""")
        if not at:
            return False
        x, y = at
        self.send("Input.dispatchMouseEvent", session=True, type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y, button="left", clickCount=1)
        return True

    def capture(self, out: Path) -> Path:
        data = self.send("Page.captureScreenshot", session=True, format="png")["data"]
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
        self._profile.cleanup()


@dataclass
class Selection:
    """What to show: read from the store before the server starts."""

    experiment_id: str
    run_id: str | None  # the model run whose page is captured
    run_name: str | None
    compare: list[str]  # the top model runs by val.score
    parents: list[str]  # exploration runs: expanded in the tree
    val_metrics: list[str]  # val.score first, then val.<task>
    image_artifact: str | None  # a PNG/SVG artifact of the model run (its pipeline drawing), if any
    parent_name: str | None = None  # the model run's exploration (the runs table's top-level row)
    model_id: str | None = None  # the model run's LoggedModel
    registered_model: str | None = None  # ... its registry entry and version
    version: str | None = None
    val_dataset: str | None = None  # the dataset its val.* metrics were measured on
    inputs: list[str] = dataclasses.field(default_factory=list)  # its input runs (its description links them)
    traces: bool = False  # the run holds traces (the agent's decision that made it): its Traces tab lists them
    links: StudyLinks | None = None  # the links `lamdagent ui` prints (a LaMDAgent store)


def _find_image(client, run_id: str, path: str = "", depth: int = 3) -> str | None:
    files = client.list_artifacts(run_id, path or None)
    for f in files:
        if not f.is_dir and f.path.lower().endswith((".png", ".svg", ".jpg")):
            return f.path
    if depth > 1:
        for f in files:
            if f.is_dir and not f.path.startswith(("predictions", "model")):
                hit = _find_image(client, run_id, f.path, depth - 1)
                if hit:
                    return hit
    return None


def pick_runs(tracking_uri: str, experiment: str, run_id: str | None = None, n_compare: int = 5) -> Selection:
    """The model run to show (given, else the best exploration action by val.score), the top
    n_compare model runs to compare, the exploration runs to expand and the val.* metric keys."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise SystemExit(f"no experiment {experiment!r} in {tracking_uri}; experiments: {', '.join(names)}")
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    models = [r for r in runs if r.data.tags.get("lamdagent.kind") in MODEL_KINDS and "val.score" in r.data.metrics]
    if not models:  # not a LaMDAgent store: any nested run, else any run
        models = [r for r in runs if "mlflow.parentRunId" in r.data.tags] or list(runs)
    models.sort(key=lambda r: (-r.data.metrics.get("val.score", float("-inf")),
                               r.data.tags.get("lamdagent.kind") != "action", -r.info.start_time))
    actions = [r for r in models if r.data.tags.get("lamdagent.kind") == "action"]  # the report draws their pipelines
    chosen = client.get_run(run_id) if run_id else (actions or models or [None])[0]
    parents = sorted({r.data.tags["mlflow.parentRunId"] for r in runs if "mlflow.parentRunId" in r.data.tags})
    vals = sorted({k for r in models for k in r.data.metrics if k.startswith("val.")})
    vals = (["val.score"] if "val.score" in vals else []) + [k for k in vals if k != "val.score"]
    tags = chosen.data.tags if chosen else {}
    parent = client.get_run(tags["mlflow.parentRunId"]) if "mlflow.parentRunId" in tags else None
    val_dataset = None
    if tags.get("lamdagent.model_id"):
        logged = client.get_logged_model(tags["lamdagent.model_id"])
        val_dataset = next((m.dataset_name for m in logged.metrics or [] if m.key == "val.score" and m.dataset_name), None)
    links = None
    if experiment.startswith("lamdagent/"):
        from lamdagent.tracking import Tracker

        links = Tracker(tracking_uri).models.study_links(exp.experiment_id, experiment.removeprefix("lamdagent/"))
    return Selection(
        links=links,
        parent_name=parent.info.run_name if parent else None,
        model_id=tags.get("lamdagent.model_id"),
        registered_model=tags.get("lamdagent.registered_model"),
        version=tags.get("lamdagent.model_version"),
        val_dataset=val_dataset,
        inputs=json.loads(tags.get("lamdagent.inputs", "[]")),
        experiment_id=exp.experiment_id,
        run_id=chosen.info.run_id if chosen else None,
        run_name=chosen.info.run_name if chosen else None,
        compare=[r.info.run_id for r in models[:n_compare]],
        parents=parents,
        val_metrics=vals,
        image_artifact=_find_image(client, chosen.info.run_id) if chosen else None,
        traces=bool(chosen and client.search_traces(locations=[exp.experiment_id], run_id=chosen.info.run_id, max_results=1)),
    )


def _text(s: str | None) -> str:
    return f"document.body.innerText.includes({json.dumps(s or '')})"


ML = "workflowType=machine_learning"  # the URL query that opens the UI in Model-training mode (no setting needed)


def _header(s: str) -> str:
    """A column header of the page's table reads `s`."""
    return (f"[...document.querySelectorAll('[role=columnheader], th')].some(h => h.innerText.trim() === {json.dumps(s)}"
            f" || h.innerText.trim().startsWith({json.dumps(s + chr(10))}))")


def _cell(s: str) -> str:
    """A cell of the page's table reads `s`."""
    return f"[...document.querySelectorAll('[role=gridcell], [role=cell], td')].some(c => c.innerText.trim() === {json.dumps(s)})"


# The runs table's rows, top to bottom, as {name, score (the val.score cell's text)}: ag-grid draws the pinned
# columns (the run name) and the others (the metrics) in separate row elements sharing a row-index.
RANKED_ROWS = """(() => { const rows = {};
    document.querySelectorAll('[role=row][row-index]').forEach(r => { const i = +r.getAttribute('row-index'); rows[i] = rows[i] || {};
        const a = r.querySelector('a[href*="/runs/"]'); if (a) rows[i].name = a.innerText.trim();
        const c = r.querySelector('[col-id="metrics.`val.score`"]'); if (c) rows[i].score = c.innerText.trim() });
    return Object.keys(rows).sort((a, b) => a - b).map(i => rows[i]) })()"""
DESCENDING = f"(() => {{ const s = {RANKED_ROWS}.map(r => parseFloat(r.score)); return s.length > 1 && s.every((v, i) => i === 0 || v <= s[i - 1]) }})()"


def click_path(best) -> tuple[list[tuple[str, str]], str]:
    """From the ranked models to the best model's LoggedModel: its name (the first row: its run's
    page), then the LoggedModel link on the first line of the run's description. The clicks
    (selector, what the page it opens shows) and the goal."""
    reached = f"location.hash.includes({json.dumps('/models/' + best.model_id)}) && {_text('About this logged model')}"
    return [(f'a[href*="/runs/{best.run_id}"]', _text("About this run")), (f'a[href*="/models/{best.model_id}"]', reached)], reached


def tops_ranking(best) -> str:
    """The best model is the runs table's first row, or ties with it (the registry's `best` stays on
    the first model to reach a score; the table orders equal scores its own way)."""
    return (f"(() => {{ const r = {RANKED_ROWS}[0]; return !!r && (r.name === {json.dumps(best.name)}"
            f" || (r.score !== undefined && parseFloat(r.score) === {json.dumps(best.score)})) }})()")


def first_row_is(name: str) -> str:
    """The runs table's first row is the run `name`."""
    return (f"(() => {{ const r = [...document.querySelectorAll('[role=row]')].find(r => r.querySelector('a[href*=\"/runs/\"]'));"
            f" return !!r && r.querySelector('a[href*=\"/runs/\"]').innerText.trim() === {json.dumps(name)} }})()")


ML = "workflowType=machine_learning"  # the URL query that opens the UI in Model-training mode (no setting needed)
BEST = "/@\\s*best/.test(document.body.innerText)"  # the registry's `@ best` alias tag (a no-break space)
VIEW = "viewStateShareKey=lamdagent"  # the study's shared runs view (experiment tag mlflow.sharedViewState.lamdagent)


def pages(base: str, sel: Selection) -> list[dict]:
    """Each page: name, url, the JS condition that says it has rendered, and `checks`: what the page
    must show (name -> JS expression), evaluated once it has rendered. No browser storage is preset:
    the browser profile is new, as a first-time visitor's; the pages are opened by the links the
    experiment's description gives (or the UI's own)."""
    e = sel.experiment_id
    q = urllib.parse.quote
    out = [{"name": "landing", "url": f"{base}/#/experiments/{e}", "ready": _text("LaMDAgent study"),
            "checks": {"description with the runs link": f"!!document.querySelector('a[href*=\"{VIEW}\"]')"}}]
    out.append({"name": "runs", "url": f"{base}/#/experiments/{e}/runs?{VIEW}&{ML}", "ready": _text(sel.parent_name),
                "checks": {"runs table": _text(sel.parent_name), "score column": _header("val.score"),
                           "best score column": _header("best.val.score"), "pipeline column": _header("lamdagent.pipeline")}})
    ranked = absolute(base, sel.links.ranked) if sel.links else f"{base}/#/experiments/{e}/runs?{VIEW}-by-score&{ML}"
    out.append({"name": "runs-by-score", "ready": _text(sel.run_name), "url": ranked,
                "checks": {"best model listed": _text(sel.run_name), "score column": _header("val.score"),
                           "sorted by val.score": _text("Sort: val.score"), "scores descending": DESCENDING}})
    best = sel.links.best if sel.links else None
    if best and best.model_id:  # the one-click path: from the printed link, real clicks to the best model's LoggedModel
        clicks, reached = click_path(best)
        out.insert(0, {"name": "click-path", "url": ranked, "ready": f"!!document.querySelector('a[href*=\"/runs/{best.run_id}\"]')", "goal": reached,
                       "max_clicks": 2, "clicks": clicks, "checks": {"best model ranked first": tops_ranking(best)}})
    if sel.run_id:
        run_url = f"{base}/#/experiments/{e}/runs/{sel.run_id}"
        links = " && ".join(f"!!document.querySelector('a[href*=\"runs/{r}\"]')" for r in sel.inputs) or "true"
        out.append({"name": "run", "url": f"{run_url}?{ML}", "ready": _text("About this run"),
                    "checks": {"description links its inputs": links, "val.score metric": _cell("val.score")}})
        if sel.image_artifact:
            drawn = "[...document.querySelectorAll('img')].some(i => i.complete && i.naturalWidth > 100)"
            out.append({"name": "run-artifact", "url": f"{run_url}/artifactPath/{q(sel.image_artifact)}?{ML}", "ready": drawn,
                        "checks": {"drawing": drawn}})
        else:
            out.append({"name": "run-artifacts", "url": f"{run_url}/artifacts?{ML}", "ready": _text("Select a file"), "checks": {}})
        if sel.traces:
            listed = f"{_text('Trace ID')} && {_text('action_types')}"  # the decision's row: its request names the action types
            out.append({"name": "run-traces", "url": f"{run_url}/traces?{ML}", "ready": listed, "checks": {"decision trace listed": listed}})
    if sel.model_id:
        registered = (f"!!document.querySelector('a[href*=\"/models/{sel.registered_model}/versions/{sel.version}\"]')"
                      if sel.version else "false")
        out.append({"name": "logged-model", "url": f"{base}/#/experiments/{e}/models/{sel.model_id}?{ML}", "ready": _text("About this logged model"),
                    "checks": {"registered version linked": registered,
                               "metrics": "/Metrics \\(([1-9][0-9]*)\\)/.test(document.body.innerText)",
                               "parameters": "/Parameters \\(([1-9][0-9]*)\\)/.test(document.body.innerText)",
                               "datasets used": _text(sel.val_dataset) if sel.val_dataset else "false"}})
        out.append({"name": "models", "url": f"{base}/#/experiments/{e}/models?{ML}", "ready": _cell(sel.run_name),
                    "checks": {"models listed": _cell(sel.run_name), "registered models column": _header("Registered models")}})
    if sel.registered_model:
        out.append({"name": "registry", "url": f"{base}/#/models/{q(sel.registered_model)}", "ready": BEST,
                    "checks": {"best alias": BEST},
                    "before_capture": "[...document.querySelectorAll('span, div')].filter(x => x.childElementCount === 0 && /@\\s*best/.test(x.innerText))"
                                      ".forEach(x => x.scrollIntoView({block: 'center'}))"})
    if len(sel.compare) >= 2:
        query = f"runs={q(json.dumps(sel.compare))}&experiments={q(json.dumps([e]))}"
        out.append({"name": "compare", "url": f"{base}/#/compare-runs?{query}",
                    "ready": "!!document.querySelector('.parcoords, .js-plotly-plot')", "metrics": sel.val_metrics[:5], "checks": {}})
    return out


def _key(browser: Browser, key: str, code: str, vk: int) -> None:
    for kind in ("keyDown", "keyUp"):
        browser.send("Input.dispatchKeyEvent", session=True, type=kind, key=key, code=code, windowsVirtualKeyCode=vk)


def choose_parcoords_metrics(browser: Browser, metrics: list[str]) -> list[str]:
    """The compare view's parallel coordinates start on the first metric (cost.seconds here): swap it for
    the val.* metrics by typing each into the Metrics select (the page's second select) and picking the
    matching option. Returns the metrics selected in the end."""
    select = "[...document.querySelectorAll('input[id^=dubois-select]')][1]"
    removed = browser.evaluate(f"""(() => {{ const i = {select}; if (!i) return -1;
        const s = i.closest('[class*=select-selector]') || i.parentElement.parentElement.parentElement;
        const x = s.querySelectorAll('[class*=selection-item-remove]'); x.forEach(b => b.click()); return x.length }})()""")
    if removed is None or removed < 0:
        return []
    for m in metrics:
        browser.evaluate(f"{select}.focus()")
        browser.send("Input.insertText", session=True, text=m)
        option = (f"[...document.querySelectorAll('[class*=select-item-option]')]"
                  f".find(o => o.getAttribute('title') === {json.dumps(m)} || o.innerText.trim() === {json.dumps(m)})")
        if browser.wait_for(f"!!({option})", timeout=10, settle=0.2):
            browser.evaluate(f"(() => {{ const o = {option}; o.dispatchEvent(new MouseEvent('mousedown', {{bubbles: true}})); o.click() }})()")
        else:
            _key(browser, "Enter", "Enter", 13)
        time.sleep(0.4)
        browser.evaluate(f"(() => {{ const i = {select}; if (i && i.value) {{ i.select(); document.execCommand('delete') }} }})()")
    _key(browser, "Escape", "Escape", 27)
    browser.evaluate("document.activeElement && document.activeElement.blur()")
    got = browser.evaluate(f"""(() => {{ const i = {select};
        const s = i && (i.closest('[class*=select-selector]') || i.parentElement.parentElement.parentElement);
        return s ? [...s.querySelectorAll('[class*=selection-item-content]')].map(x => x.innerText.trim()) : [] }})()""")
    return got or []


def take(tracking_uri: str, experiment: str, out_dir: Path, run_id: str | None = None, n_compare: int = 5,
         width: int = 1600, height: int = 1000, port: int | None = None, chromium: str | None = None,
         timeout: float = 60.0) -> dict[str, Path]:
    """Screenshots of the experiment's pages, as {page name: PNG path}. A page that does not reach its
    ready condition within `timeout` is still captured, with a warning on stderr."""
    chromium = chromium or find_chromium()
    if not chromium:
        raise SystemExit("no chromium found: apt-get install -y chromium")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sel = pick_runs(tracking_uri, experiment, run_id, n_compare)
    shots: dict[str, Path] = {}
    checks: dict[str, dict[str, bool]] = {}
    with mlflow_server(tracking_uri, port or free_port(), log=out_dir / "server.log") as base:
        browser = Browser(chromium, width, height)  # a new profile: nothing preset, as a first-time visitor
        try:
            for page in pages(base, sel):
                browser.goto(page["url"])
                ready = browser.wait_for(page["ready"], timeout=timeout)
                if not page.get("clicks"):  # the click path goes first, as a first visit: the Assistant panel open
                    close_assistant(browser)
                if ready and page.get("metrics"):
                    chosen = choose_parcoords_metrics(browser, page["metrics"])
                    if set(chosen) != set(page["metrics"]):
                        print(f"warning: parallel coordinates show {chosen}, not {page['metrics']}", file=sys.stderr)
                    time.sleep(1.5)
                if not ready:
                    print(f"warning: {page['name']} did not render within {timeout:.0f} s", file=sys.stderr)
                checks[page["name"]] = {name: bool(browser.evaluate(js)) for name, js in page.get("checks", {}).items()}
                if page.get("clicks"):
                    made = follow_clicks(browser, page["clicks"], page["goal"], timeout)
                    checks[page["name"]][f"reached in at most {page['max_clicks']} clicks"] = 0 < made <= page["max_clicks"]
                    print(f"{page['name']:14s} {'reached' if made > 0 else 'NOT reached'} after {abs(made)} click(s): {browser.evaluate('location.href')}")
                (out_dir / f"{page['name']}.txt").write_text(browser.evaluate("document.body.innerText") or "")
                if page.get("before_capture"):
                    browser.evaluate(page["before_capture"])
                    time.sleep(0.8)
                shots[page["name"]] = browser.capture(out_dir / f"{page['name']}.png")
                print(f"{page['name']:14s} {shots[page['name']]}  <- {page['url']}")
                for name, ok in checks[page["name"]].items():
                    print(f"  {'ok  ' if ok else 'FAIL'} {name}")
        finally:
            browser.close()
    (out_dir / "checks.json").write_text(json.dumps(checks, indent=2))
    return shots


def follow_clicks(browser: Browser, clicks: list[tuple[str, str]], goal: str, timeout: float = 60.0) -> int:
    """Real clicks from the page shown: each (selector, JS condition of the page it opens) in turn,
    until `goal` holds. The clicks it took (> 0), or minus those made when it was not reached (a
    missing or covered element, a page that did not open)."""
    made = 0
    for selector, opens in clicks:
        if browser.evaluate(goal):
            break
        tabs = browser.tabs()
        if not browser.click(selector):
            return -made
        made += 1
        if not browser.wait_for(opens, timeout=2.0, settle=0.0):  # the same tab, or a new one
            browser.follow_new_tab(tabs)
            if not browser.wait_for(opens, timeout=timeout, settle=1.0):
                return -made
    return made if browser.evaluate(goal) else -made


def close_assistant(browser: Browser) -> bool:
    """MLflow 3.17 opens its Assistant panel on a first visit (a per-browser choice): close it with its
    x, as a visitor would. Whether it was open."""
    closed = browser.evaluate("""(() => { const b = document.querySelector('[data-component-id="mlflow.assistant.chat_panel.close"]');
        if (b) { b.click(); return true } return false })()""")
    if closed:
        time.sleep(0.8)
    return bool(closed)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--study", help="a study name: the experiment is lamdagent/<study> (default: demo)")
    g.add_argument("--experiment", help="an experiment name")
    p.add_argument("--out", default="ui-screenshots", help="folder for the PNGs (and server.log)")
    p.add_argument("--run", help="the model run whose page is captured (default: the best by val.score)")
    p.add_argument("--compare", type=int, default=5, help="how many top runs the compare view holds")
    p.add_argument("--width", type=int, default=1600)
    p.add_argument("--height", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds each page gets to render")
    p.add_argument("--port", type=int, help="default: a free port")
    a = p.parse_args(argv)
    experiment = a.experiment or f"lamdagent/{a.study or 'demo'}"
    take(a.tracking_uri, experiment, Path(a.out), a.run, a.compare, a.width, a.height, a.port, timeout=a.timeout)


if __name__ == "__main__":
    main()
