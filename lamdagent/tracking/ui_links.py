"""The MLflow UI's addresses, built in one place (docs/ui.md): the pages of runs, LoggedModels,
registry versions and the study's shared runs views (relative to the server, `#/...`, as run
descriptions hold them), a study's direct links (its models ranked by val.score, its best model's
run and LoggedModel, the registry's `@best`), and where a UI that serves the store answers.

Every experiment page link carries `?workflowType=machine_learning`: MLflow 3.17 opens an experiment
in its GenAI mode in a new browser, whatever the store says; the query opens it in Model-training
mode. Standard library only: the links are read from the store by `Models.study_links`.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from lamdagent.tracking.schema import experiment_name

ML_MODE = "workflowType=machine_learning"  # the URL query that opens the UI in Model-training mode
VIEW_KEY = "lamdagent"  # the study's runs view: its scores and pipelines as columns, its explorations expanded
BY_SCORE = VIEW_KEY + "-by-score"  # the models only, best val.score first
MODELS_ONLY = "metrics.`val.score` > -1"  # a runs filter: the models (explorations log best.val.score, not val.score)
DEFAULT_UI = "http://127.0.0.1:5000"  # where `lamdagent ui` serves by default
UI_ENV = "LAMDAGENT_UI_URL"  # the address of a UI the user serves elsewhere (another port, a proxy)


def run_link(experiment_id: str, run_id: str) -> str:
    """A run's page."""
    return f"#/experiments/{experiment_id}/runs/{run_id}?{ML_MODE}"


def artifact_link(experiment_id: str, run_id: str, path: str) -> str:
    """One artifact of a run, shown in the run's artifact browser."""
    return f"#/experiments/{experiment_id}/runs/{run_id}/artifactPath/{urllib.parse.quote(path)}?{ML_MODE}"


def model_link(experiment_id: str, model_id: str) -> str:
    """A LoggedModel's page."""
    return f"#/experiments/{experiment_id}/models/{model_id}?{ML_MODE}"


def view_link(experiment_id: str, key: str = VIEW_KEY) -> str:
    """A study's runs view (columns chosen), for any browser: MLflow 3.17 reads a shared view's
    state from the experiment tag `mlflow.sharedViewState.<key>`."""
    return f"#/experiments/{experiment_id}/runs?viewStateShareKey={key}&{ML_MODE}"


def ranked_link(experiment_id: str) -> str:
    """The runs table sorted by val.score over the models only, without a shared view (a store
    written before the views existed): MLflow's default columns."""
    query = urllib.parse.urlencode({"searchFilter": MODELS_ONLY, "orderByKey": "metrics.`val.score`", "orderByAsc": "false"})
    return f"#/experiments/{experiment_id}/runs?{query}&{ML_MODE}"


def registry_link(registered_name: str) -> str:
    return f"#/models/{urllib.parse.quote(registered_name)}"


def version_link(registered_name: str, version: str) -> str:
    return f"#/models/{urllib.parse.quote(registered_name)}/versions/{version}"


@dataclass(frozen=True)
class BestModel:
    """The study's best model: the version holding the registry's `best` alias (else the top run by val.score)."""

    name: str
    score: float | None
    run_id: str
    model_id: str
    registered_model: str
    version: str


@dataclass(frozen=True)
class StudyLinks:
    """A study's direct links, relative to the server."""

    study: str
    experiment_id: str
    ranked: str  # the study's models, best val.score first
    best: BestModel | None

    def pages(self) -> list[tuple[str, str]]:
        """(what, relative link) of each page that matters, the ranked models first."""
        found = [("models by val.score", self.ranked)]
        best = self.best
        if best:
            score = "" if best.score is None else f", val.score {best.score:.4f}"
            found.append((f"best model {best.name}{score}: its run", run_link(self.experiment_id, best.run_id)))
            if best.model_id:
                found.append((f"best model {best.name}: its LoggedModel", model_link(self.experiment_id, best.model_id)))
            if best.version:
                found.append((f"registry {best.registered_model}@best (v{best.version})", version_link(best.registered_model, best.version)))
        return found

    def urls(self, base: str) -> list[tuple[str, str]]:
        """(what, absolute URL) on the UI at `base`."""
        return [(what, absolute(base, link)) for what, link in self.pages()]


def absolute(base: str, link: str) -> str:
    return f"{base.rstrip('/')}/{link}"


def without_credentials(url: str) -> str:
    """The URL without user:password@ (links are printed)."""
    parsed = urllib.parse.urlparse(url)
    return parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl() if "@" in parsed.netloc else url


def is_server(tracking_uri: str) -> bool:
    """A tracking URI that is an MLflow server: its address serves the UI too."""
    return urllib.parse.urlparse(tracking_uri).scheme in ("http", "https")


def unreachable(base: str, timeout: float = 3.0) -> str | None:
    """Why the MLflow server at `base` does not answer (None when its /health does)."""
    try:
        with urllib.request.urlopen(absolute(base, "health"), timeout=timeout) as reply:
            return None if reply.status == 200 else f"HTTP {reply.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return str(reason.strerror if isinstance(reason, OSError) and reason.strerror else reason)


def serves(base: str, links: StudyLinks, timeout: float = 1.0) -> bool:
    """Whether the UI at `base` serves this store: it knows the study's experiment by name and id,
    and its best model's run (a run id is unique to a store)."""
    def get(path: str, **query) -> dict | None:
        try:
            with urllib.request.urlopen(absolute(base, f"api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"), timeout=timeout) as reply:
                return json.loads(reply.read())
        except (OSError, ValueError):
            return None

    found = get("experiments/get", experiment_id=links.experiment_id)
    if not found or found.get("experiment", {}).get("name") != experiment_name(links.study):
        return False
    return links.best is None or bool(get("runs/get", run_id=links.best.run_id))


def reachable_ui(tracking_uri: str, links: StudyLinks) -> str | None:
    """The address of a UI that serves the store, if one answers: the tracking server itself, a
    configured one ($LAMDAGENT_UI_URL) or `lamdagent ui`'s default address."""
    if is_server(tracking_uri):
        return without_credentials(tracking_uri).rstrip("/")
    for base in dict.fromkeys(filter(None, [os.environ.get(UI_ENV, "").rstrip("/"), DEFAULT_UI])):
        if serves(base, links):
            return base
    return None
