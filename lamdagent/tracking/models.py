"""A produced model as MLflow 3's model-centric UI shows it (docs/ui.md, docs/tracking.md): the
LoggedModel's params, its metrics logged against it with the dataset they were measured on, its
run's dataset and model inputs, its registered version linked on the LoggedModel page, the study's
`best` alias, and run descriptions (`mlflow.note.content`) with links a person can click.

Only MLflow's public client API; called by the tracker's users through `Tracker.models`.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from dataclasses import dataclass, field

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelInput, LoggedModelOutput
from mlflow.exceptions import MlflowException

from lamdagent.tracking.schema import tag
from lamdagent.tracking.ui_links import BY_SCORE, MODELS_ONLY, VIEW_KEY, BestModel, StudyLinks, ranked_link, view_link

_LOST_RACE = re.compile(r"UNIQUE constraint|duplicate key|IntegrityError|Duplicate entry", re.I)  # sqlite, postgres, mysql
BEST_ALIAS = "best"  # the registry alias of the study's best model by val.score
NOTE = "mlflow.note.content"  # a run's (or experiment's) description in the UI, markdown
CONTEXT = "mlflow.data.context"  # a dataset input's role: training, evaluation
SCORE_TAG = tag("val_score")  # a model version's val.score
SHARED_VIEW = "mlflow.sharedViewState."  # + key: an experiment tag holding a runs view opened by `?viewStateShareKey=<key>`


@dataclass(frozen=True)
class DataRef:
    """A dataset as MLflow records it: name, content digest, rows (and the entity to log)."""

    name: str
    digest: str
    rows: int
    entity: Dataset = field(repr=False, compare=False)


OWN = frozenset({"train.loss"})  # a model's own metrics measured on no evaluation dataset: its final training loss


@dataclass(frozen=True)
class Measured:
    """Which model a batch of metrics belongs to: the model's own metrics are those measured on a
    dataset (by metric key: val.*, test.*, ood.*) and the `own` ones (its final training loss). The
    others (costs, sizes, per-step curves) stay on the run, so the LoggedModel's table fits a screen."""

    model_id: str
    datasets: dict[str, DataRef] = field(default_factory=dict)
    own: frozenset[str] = OWN

    def of(self, key: str) -> dict:
        """Metric(...) keyword arguments for `key`: the model and the dataset it was measured on, for
        a metric of the model's own; nothing for a metric of the run only."""
        ref = self.datasets.get(key)
        if ref:
            return {"model_id": self.model_id, "dataset_name": ref.name, "dataset_digest": ref.digest}
        return {"model_id": self.model_id} if key in self.own else {}


_DATASETS: dict[str, DataRef] = {}  # key -> dataset: built once per process (digests of the same rows)


def dataset(key: str, name: str, rows, split: str) -> DataRef:
    """A dataset of `rows` (list of dicts, or a callable giving them) named `name`, once per `key`
    (e.g. a fingerprint): MLflow's pandas dataset gives its digest, schema and row count."""
    if key not in _DATASETS:
        import pandas as pd

        frame = pd.DataFrame(rows() if callable(rows) else rows)
        made = mlflow.data.from_pandas(frame, name=name).to_dict()
        made["source_type"], made["source"] = "lamdagent", json.dumps({"dataset": name, "split": split})
        entity = Dataset(**made)
        _DATASETS[key] = DataRef(name, entity.digest, len(frame), entity)
    return _DATASETS[key]


class Models:
    """The model-centric records of a study's models, over one MlflowClient."""

    def __init__(self, client: MlflowClient, tracking_uri: str, call=lambda fn, *args, **kwargs: fn(*args, **kwargs)):
        self.client = client
        self.tracking_uri = tracking_uri  # the fluent API reads the process's store: set to this one before each call
        self._call = call  # how a call of MLflow's fluent API is made (the tracker's waits out an outage)

    # --- one produced model -----------------------------------------------------------------------
    def register(self, model_id: str, registered_name: str, tags: dict[str, str]) -> str:
        """Register the LoggedModel as a new version of `registered_name` through
        `mlflow.register_model`, which (unlike `MlflowClient.create_model_version`) also records the
        version on the LoggedModel (its page then says "Registered"). Its console lines are dropped.
        It registers in the process's tracking store: this one's, though another Tracker was made since."""
        mlflow.set_tracking_uri(self.tracking_uri)
        with contextlib.redirect_stderr(io.StringIO()):
            version = self._call(mlflow.register_model, f"models:/{model_id}", registered_name, tags=tags)
        return str(version.version)

    def describe(self, run_id: str, model_id: str, params: dict[str, str], training: list[DataRef], evaluation: list[DataRef],
                 input_models: list[str]) -> None:
        """The LoggedModel's params; the run's inputs: its training data (context `training`), the
        validation data it was scored on (`evaluation`), and the LoggedModels it was made from; its
        output: the LoggedModel."""
        if params:
            self.client.log_model_params(model_id, {k[:250]: str(v)[:6000] for k, v in params.items()})
        inputs = [DatasetInput(d.entity, [InputTag(CONTEXT, "training")]) for d in training]
        inputs += [DatasetInput(d.entity, [InputTag(CONTEXT, "evaluation")]) for d in evaluation]
        models = [LoggedModelInput(m) for m in dict.fromkeys(input_models) if m]
        if inputs or models:
            self._log_inputs(run_id, inputs, models)
        self.client.log_outputs(run_id, [LoggedModelOutput(model_id, 0)])  # the run's model (else the UI names an input model)

    def _log_inputs(self, run_id: str, inputs: list[DatasetInput], models: list[LoggedModelInput]) -> None:
        """`log_inputs`; two explorations of one study that log the same new dataset at once both
        insert it, and the second, having lost the race, finds it and links it."""
        _again_after_lost_race(lambda: self.client.log_inputs(run_id, datasets=inputs, models=models))

    def note(self, run_id: str, text: str, model_id: str = "") -> None:
        """The run's description (markdown, shown on its page), and its LoggedModel's."""
        self.client.set_tag(run_id, NOTE, text[:60000])
        if model_id:
            self.client.set_logged_model_tags(model_id, {NOTE: text[:60000]})

    def describe_study(self, experiment_id: str, text: str) -> None:
        """The experiment's description, unless it has one (a person's edit is kept)."""
        if NOTE not in self.client.get_experiment(experiment_id).tags:
            _again_after_lost_race(lambda: self.client.set_experiment_tag(experiment_id, NOTE, text))

    def share_runs_view(self, experiment_id: str, columns: list[str], expand: str) -> None:
        """The study's shared runs views (view_link): `columns` (ag-grid ids such as
        metrics.`val.score`), every exploration marked expanded (`expand` added to those already
        there); and the models only, best val.score first (key BY_SCORE), with val.score as their only
        metric column: it stays in view beside the run names (MLflow orders metric columns by name)."""
        key = SHARED_VIEW + VIEW_KEY
        try:  # the explorations already expanded
            old = json.loads(self.client.get_experiment(experiment_id).tags.get(key, "{}"))
        except ValueError:
            old = {}
        expanded = {**old.get("runsExpanded", {}), expand: True}
        state = {"searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": False, "startTime": "ALL",
                 "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
                 "selectedColumns": columns, "runsExpanded": dict(list(expanded.items())[-200:]), "runsPinned": [], "runsHidden": [],
                 "runsHiddenMode": "FIRST_10_RUNS", "hideEmptyCharts": True, "useGroupedValuesInCharts": True, "groupBy": None,
                 "groupsExpanded": {}, "viewMaximized": False, "runListHidden": False, "isAccordionReordered": False}
        ranked = [c for c in columns if not c.startswith("metrics.") or c == "metrics.`val.score`"]
        by_score = {**state, "orderByKey": "metrics.`val.score`", "searchFilter": MODELS_ONLY, "selectedColumns": ranked}
        for name, view in ((key, state), (SHARED_VIEW + BY_SCORE, by_score)):
            _again_after_lost_race(lambda: self.client.set_experiment_tag(experiment_id, name, json.dumps(view, separators=(",", ":"))))

    # --- the study's best -------------------------------------------------------------------------
    def study_links(self, experiment_id: str, study: str) -> StudyLinks:
        """The study's direct UI links: its models ranked by val.score (the shared view when the
        store has it), its best model (the registry's `best`, else the top model run by val.score)."""
        tags = self.client.get_experiment(experiment_id).tags
        ranked = view_link(experiment_id, BY_SCORE) if SHARED_VIEW + BY_SCORE in tags else ranked_link(experiment_id)
        top = self.client.search_runs([experiment_id], f"{MODELS_ONLY} and tags.`{tag('status')}` = 'ok'",
                                      order_by=["metrics.`val.score` DESC"], max_results=1)
        if not top:
            return StudyLinks(study, experiment_id, ranked, None)
        run = top[0]
        registered = run.data.tags.get(tag("registered_model"), "")
        holder = self._holder(registered) if registered else None  # on the first of equal scores: maybe not the top run
        if holder is not None and holder.run_id != run.info.run_id:
            try:
                run = self.client.get_run(holder.run_id)
            except MlflowException:  # the version's run was deleted: the top run stands
                holder = None
        tags = run.data.tags
        best = BestModel(tags.get(tag("name"), run.info.run_name), run.data.metrics.get("val.score"), run.info.run_id, tags.get(tag("model_id"), ""),
                         registered, str(holder.version) if holder is not None else tags.get(tag("model_version"), ""))
        return StudyLinks(study, experiment_id, ranked, best)

    def score_version(self, registered_name: str, version: str, score: float, pipeline: str, run_text: str) -> bool:
        """A version's score (tag `lamdagent.val_score`, and its description); the `best` alias moves
        to it when it beats the version holding it. Whether it moved."""
        self.client.set_model_version_tag(registered_name, version, SCORE_TAG, repr(float(score)))
        self.client.update_model_version(registered_name, version, description=f"val.score {score:.4f} · {pipeline} · {run_text}")
        holder = self.best(registered_name)
        if holder is not None and str(holder[0]) != str(version) and holder[1] >= score:
            return False
        self.client.set_registered_model_alias(registered_name, BEST_ALIAS, version)
        return True

    def best(self, registered_name: str) -> tuple[str, float] | None:
        """(version, score) holding the `best` alias, if any."""
        version = self._holder(registered_name)
        return None if version is None else (str(version.version), _score(version.tags))

    def _holder(self, registered_name: str):
        """The model version holding the `best` alias, if any."""
        try:
            return self.client.get_model_version_by_alias(registered_name, BEST_ALIAS)
        except MlflowException:
            return None

    def repoint_best(self, registered_name: str) -> str | None:
        """The `best` alias on the best scored version that remains (after versions were deleted)."""
        scored = [(_score(v.tags), int(v.version)) for v in self.client.search_model_versions(f"name = '{registered_name}'")
                  if SCORE_TAG in v.tags]
        if not scored:
            return None
        version = str(max(scored)[1])
        self.client.set_registered_model_alias(registered_name, BEST_ALIAS, version)
        return version


def _again_after_lost_race(write) -> None:
    """A write that inserts a row two processes may insert at once (a new dataset, an experiment
    tag: the store reads, then inserts); the one that loses the race is refused by a unique
    constraint, its transaction rolled back whole, and its next try finds the row and updates it."""
    for attempt in range(3):
        try:
            write()
            return
        except MlflowException as error:
            if attempt == 2 or not _LOST_RACE.search(str(error)):
                raise
            time.sleep(0.2 * (attempt + 1))


def _score(tags: dict[str, str]) -> float:
    try:
        return float(tags[SCORE_TAG])
    except (KeyError, ValueError):
        return float("-inf")
