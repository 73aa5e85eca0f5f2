"""Export a model's pipeline as files that run without LaMDAgent (`lamdagent export RUN DIR`).

The lineage is read from the store as a replay reads it, and each step's action is rebuilt from the
source exploration's config (its fingerprint must match the recorded one). The action then runs with
a capturing context (`ActionContext.capture`): its training or merge is described, not computed, so
the exported rows, TRL config and mergekit configuration are the ones the tool's own code builds.
Model paths are the export's step folders, relative to DIR:

    DIR/pipeline.json                     the steps in lineage order (parents first)
    DIR/run_pipeline.py                   the runner (lamdagent/experiments/pipeline_runner.py, verbatim)
    DIR/steps/NN_<name>/step.json         SFT/DPO: input model, adapter base, LoRA settings, seed;
                        trl_config.json   ... the SFTConfig/DPOConfig keyword arguments
                        train.jsonl       ... the exact rows trained on (sampled, templated, on-policy pairs)
                        mergekit.yaml     merge: the configuration; its MergeOptions are in step.json
    DIR/steps/NN_<name>/model/            written by the runner; for the base, a copy of a built-in one
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lamdagent import config as config_mod
from lamdagent.actions import ActionContext
from lamdagent.errors import UserError
from lamdagent.experiments.replay import pipeline_runs, source_config
from lamdagent.exploration.runner import models_from_records
from lamdagent.exploration.study import Study
from lamdagent.files import staged_dir
from lamdagent.models.folders import BUILTIN_PREFIX, resolve_base_model
from lamdagent.space import ModelObject
from lamdagent.tracking import Tracker, WeightsFreed

RUNNER = Path(__file__).with_name("pipeline_runner.py")
FORMAT = 1  # of pipeline.json


@dataclass
class ExportContext(ActionContext):
    """An action's context in an export: model paths are step folders of the export, training and
    merges go to `capture`, and loading a model (DPO's on-policy pairs) reads its stored weights."""

    stored: Callable[[ModelObject], Path] | None = None

    def load(self, model, *, trainable: bool = False):
        from lamdagent.models.folders import load_model

        base = self.stored(model.adapter_base) if model.adapter_base is not None else None
        return load_model(self.stored(model), base, trainable=trainable)


def check_target(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"export folder {str(out_dir)!r} exists and is not empty; name a new or empty folder")


def base_reference(ref: str, seed: int, staging: Path, folder: Path) -> str:
    """How the export names the base model: a built-in one is copied into `folder` (a step folder, whose
    path mergekit takes for a local one); a local folder by its absolute path; a hub id as it is."""
    if ref.startswith(BUILTIN_PREFIX):
        shutil.copytree(resolve_base_model(ref, seed), staging / folder)
        return str(folder)
    local = Path(ref).expanduser()
    return str(local.resolve()) if local.exists() else ref


def export_pipeline(tracker: Tracker, run_id: str, out_dir: Path) -> dict:
    """Write the pipeline of model run `run_id` into `out_dir` (new or empty); returns pipeline.json's content."""
    out_dir = Path(out_dir)
    check_target(out_dir)
    raw, _, _ = source_config(tracker, run_id)
    records = pipeline_runs(tracker, run_id)
    cfg = config_mod.load_config("", [], base=raw)
    study = Study(cfg)
    models = {m.run_id: m for m in models_from_records(records)}
    refs: dict[str, str] = {}  # run id -> the model's folder in the export (or the base's reference)

    def stored(model: ModelObject) -> Path:
        try:
            return tracker.model_dir(model.model_id)
        except WeightsFreed:
            raise UserError(f"the weights of {model.name} were freed (lamdagent gc); DPO needs them to build its on-policy pairs") from None

    with staged_dir(out_dir) as staging:
        base = next(r for r in records if not r.action_type)  # the root of every lineage
        base_ref = base_reference(cfg.base_model, cfg.seed, staging, Path("steps") / f"{records.index(base):02d}_{base.name}" / "model")
        steps = []
        for number, record in enumerate(records):
            if record is base:
                refs[record.run_id] = base_ref
                steps.append({"name": record.name, "kind": "base", "model": refs[record.run_id], "source": cfg.base_model, "run_id": record.run_id})
                continue
            action = study.find_action([models[i] for i in record.inputs], record.action_type, record.action, record.fingerprint, record.settings)
            if action is None:
                raise UserError(f"cannot export {record.name} = {record.pipeline}: study {cfg.name!r} no longer gives the action that made it")
            step_dir = Path("steps") / f"{number:02d}_{record.name}"
            captured: list[tuple[str, dict]] = []
            ctx = ExportContext(step_dir, action.seed, Path(base_ref), resolve=lambda m: Path(refs[m.run_id]),
                                chat_template=cfg.chat_template, capture=lambda kind, job: captured.append((kind, job)), stored=stored)
            action.type.run(action.bindings, ctx)
            if len(captured) != 1:
                raise UserError(f"cannot export {record.name}: action type {record.action_type!r} does not describe its work to an export")
            write_step(staging / step_dir, *captured[0])
            refs[record.run_id] = str(step_dir / "model")
            steps.append({"name": record.name, "kind": captured[0][0], "dir": str(step_dir), "pipeline": record.pipeline, "run_id": record.run_id})
        pipeline = {"format": FORMAT, "study": cfg.name, "run_id": run_id, "pipeline": records[-1].pipeline, "final": refs[run_id],
                    "steps": steps}
        (staging / "pipeline.json").write_text(json.dumps(pipeline, indent=1) + "\n")
        shutil.copyfile(RUNNER, staging / "run_pipeline.py")
    return pipeline


def write_step(folder: Path, kind: str, job: dict) -> None:
    """A step's files, from what its action described (kind, job) to the capture."""
    import yaml

    folder.mkdir(parents=True)
    if kind == "merge":
        (folder / "mergekit.yaml").write_text(yaml.safe_dump(job["config"], sort_keys=False))
        (folder / "step.json").write_text(json.dumps({"kind": kind, "options": job["options"]}, indent=1) + "\n")
        return
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in job["rows"]))
    (folder / "trl_config.json").write_text(json.dumps(job["config"], indent=1) + "\n")
    spec = {"kind": kind, **{k: v for k, v in job.items() if k not in ("rows", "config")}}
    (folder / "step.json").write_text(json.dumps(spec, indent=1) + "\n")
