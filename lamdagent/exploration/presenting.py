"""What a produced model shows in the MLflow UI as soon as it is made (docs/ui.md): its training
and validation data as MLflow datasets, its LoggedModel's params, its pipeline drawing (a small PNG
on its run) and a description with links to its input runs, its LoggedModel and registry version."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from lamdagent.space import ModelObject, PreferenceDatasetObject
from lamdagent.space.lineage import walk
from lamdagent.tracking import Tracker
from lamdagent.tracking.models import BEST_ALIAS, DataRef, dataset
from lamdagent.tracking.ui_links import BY_SCORE, artifact_link, model_link, registry_link, run_link, version_link, view_link

DRAWING = "pipeline.png"  # the artifact path of a model run's pipeline drawing
SHORT = {"learning_rate": "lr", "weight": "w", "density": "d"}


def step_label(action_type: str, action: dict) -> str:
    """A node's label in a pipeline drawing: the action and its non-model bindings, e.g. `sft(all, lr=0.003)`."""
    if not action_type:
        return "base model"
    values = [f"{SHORT.get(k, k)}={v}" if k not in ("dataset", "preference_dataset") else str(v)
              for k, v in action.items() if not k.startswith("model")]
    return f"{action_type}({', '.join(values)})"


def training_data(bindings: list) -> list[DataRef]:
    """The datasets an action trains on, as MLflow datasets (built once per process and dataset); a
    mixture (`all` of a study whose candidates differ in size or kind) is one dataset of all its rows."""
    return [dataset(data.fingerprint, f"{data.name}/train", data.pairs if isinstance(data, PreferenceDatasetObject) else data.rows, "train")
            for data in bindings]


def validation_data(study) -> DataRef:
    """The study's validation split (every task's val examples): what val.* are measured on."""
    return split_data(study, study.tasks, "val", study.cfg.data.val_size, "val")


def split_data(study, tasks: list, split: str, n: int, label: str) -> DataRef:
    """The first `n` examples of `split` of each of `tasks`, as one MLflow dataset `<study>/<label>`."""
    cfg = study.cfg
    key = json.dumps([label, split, n, cfg.seed, cfg.chat_template, [t.definition_key() for t in tasks]])

    def rows():
        return [{"task": t.name, "prompt": e.prompt, "target": e.target, "gold": json.dumps(e.gold) if isinstance(e.gold, tuple) else e.gold}
                for t in tasks for e in t.examples(split, n, cfg.seed)]

    return dataset(key, f"{cfg.name}/{label}", rows, split)


def lineage(model: ModelObject) -> list[ModelObject]:
    """The model and its ancestors, each once, ancestors first."""
    return walk([model], lambda m: m.parents, key=lambda m: m.run_id)


class Presenter:
    """Draws and describes a study's models on their runs; the labels of models it has seen are kept."""

    def __init__(self, tracker: Tracker, experiment_id: str):
        self.tracker, self.experiment_id = tracker, experiment_id
        self.labels: dict[str, str] = {}  # run id -> node label
        self.seconds: list[float] = []  # what each drawing cost (docs/performance.md)
        self.failures: list[str] = []  # drawings that could not be made (a convenience: never a failed action)
        self._drawing = None  # one background thread draws and uploads, off the actions' path
        self._pending: list = []

    def draw_later(self, model: ModelObject) -> None:
        """`draw` in the background (the labels it needs are read now); `wait` joins it. Python joins
        the thread at exit, so a drawing is lost only with a killed process."""
        from concurrent.futures import ThreadPoolExecutor

        for m in lineage(model):
            self.label(m.run_id)
        if self._drawing is None:
            self._drawing = ThreadPoolExecutor(1, thread_name_prefix="lamdagent-drawing")
        self._pending.append(self._drawing.submit(self._draw_quietly, model))

    def _draw_quietly(self, model: ModelObject) -> None:
        try:
            self.draw(model)
        except Exception as err:
            self.failures.append(f"{model.name}: {type(err).__name__}: {err}")

    def wait(self) -> list[str]:
        """Every drawing asked for is made and logged; the failures so far."""
        for future in self._pending:
            future.result()
        self._pending.clear()
        return self.failures

    def __getstate__(self):  # shipped to Ray workers with the runner: no thread
        return {**self.__dict__, "_drawing": None, "_pending": []}

    def label(self, run_id: str) -> str:
        if run_id not in self.labels:
            try:
                record = self.tracker.record(run_id)
            except Exception:  # a model object without a run of its own (made outside the tool): no step label
                self.labels[run_id] = ""
            else:
                self.labels[run_id] = step_label(record.action_type, record.action)
        return self.labels[run_id]

    def draw(self, model: ModelObject) -> None:
        """The model's pipeline drawing, logged on its run as `pipeline.png`."""
        from lamdagent.reporting.figures import PipelineNode, pipeline_dag

        started = time.perf_counter()
        nodes = [PipelineNode(m.run_id, m.name, self.label(m.run_id), m.score, [p.run_id for p in m.parents]) for m in lineage(model)]
        score = "" if model.score is None else f" (val.score {model.score:.3f})"
        with tempfile.TemporaryDirectory() as folder:
            # top to bottom, 12.5 px text: the UI fits an image to its artifact pane (~500 px wide beside its
            # Assistant panel on a 1280 px screen), so a narrow drawing is shown at its own size
            path = pipeline_dag(nodes, Path(folder) / DRAWING, title=f"{model.name}{score}", dpi=100, direction="down", fontsize=9)
            self.tracker.log_files(model.run_id, path)
        self.seconds.append(time.perf_counter() - started)

    def describe(self, model: ModelObject, registered: dict[str, str] | None = None, source_run: str = "") -> str:
        """The run's description. Its first line, short, holds the links (the UI shows a long
        description folded after three lines, and a narrow page puts it below the run's details):
        the model, its score, its LoggedModel, its registry version, its drawing; then its pipeline
        and its input runs."""
        e = self.experiment_id
        first = [f"**{model.name}**"] + ([] if model.score is None else [f"val.score **{model.score:.4f}**"])
        if model.model_id:
            first.append(f"[LoggedModel]({model_link(e, model.model_id)})")
            if registered and registered.get("model_version"):
                name, version = registered["registered_model"], registered["model_version"]
                first.append(f"[{name} v{version}]({version_link(name, version)})")
        if not source_run:
            first.append(f"[drawing]({artifact_link(e, model.run_id, DRAWING)})")
        lines = [" · ".join(first), f"Pipeline `{model.pipeline}`"]
        if model.parents:
            lines.append("Made from " + ", ".join(f"[{p.name}]({run_link(e, p.run_id)})" for p in model.parents)
                         + f" by `{self.labels.get(model.run_id, '')}`.")
        if source_run:
            lines.append(f"A repeat: the model of run [{source_run[:8]}]({run_link(e, source_run)}), reused.")
        return "\n\n".join(lines)


def study_note(experiment_id: str, study: str, registered_name: str) -> str:
    """The experiment's description: what its runs are and where the scores are (docs/ui.md)."""
    by_score = view_link(experiment_id, BY_SCORE)
    return "\n".join([
        f"LaMDAgent study **{study}**: **[open the runs with their scores and pipelines]({view_link(experiment_id)})** · "
        f"[models by val.score]({by_score}) · [registry]({registry_link(registered_name)})",
        "",
        "- **Runs** (sidebar switch: *Model training*): one parent run per exploration; expand it for its models "
        "(`base`, `spec_<task>`, then `m1`, `m2`, ... by iteration). The first link above opens them with the columns "
        "`best.val.score`, `val.score`, `val.<task>`, `lamdagent.pipeline`.",
        "- **Models**: each model's `val.*` metrics (on the validation split), params, datasets and registered version.",
        f"- **Registry**: [{registered_name}]({registry_link(registered_name)}); alias `@{BEST_ALIAS}` = the study's best model by val.score.",
        f"- A model run: its description links its input runs; Artifacts holds its pipeline drawing `{DRAWING}`.",
    ])


def view_columns(study) -> list[str]:
    """The study's runs view's columns: the scores, then the lineage tags."""
    metrics = ["best.val.score", "val.score", *[f"val.{t}" for t in study.task_names]]
    tags = ["lamdagent.pipeline", "lamdagent.best_model", "lamdagent.action_type"]
    return [f"metrics.`{m}`" for m in metrics] + [f"tags.`{t}`" for t in tags]


def exploration_note(experiment_id: str, study: str, best: ModelObject, registered_name: str) -> str:
    """An exploration run's description: its best model so far, with links."""
    return (f"Exploration of study **{study}**. Best model so far: [{best.name}]({run_link(experiment_id, best.run_id)}) = "
            f"`{best.pipeline}`, val.score **{best.score:.4f}** (metric `best.val.score`; tag `lamdagent.best_model`). "
            f"The study's best across explorations: [{registered_name}@{BEST_ALIAS}]({registry_link(registered_name)}). "
            f"[All runs with their scores and pipelines]({view_link(experiment_id)}).")
