"""The initial objects: the base model and one specialist per task (paper 3.1), as seed runs."""

from __future__ import annotations

import json
import shutil

from lamdagent import tracking as tr
from lamdagent.actions import ACTION_TYPES, ActionContext, ActionOutput
from lamdagent.errors import UserError
from lamdagent.evaluation.evaluator import task_weights
from lamdagent.exploration.runner import Produced, Runner
from lamdagent.exploration.study import Study
from lamdagent.models.folders import architecture, resolve_base_model
from lamdagent.space import Action, ModelObject, fingerprint


def sft_action(study: Study, model: ModelObject, dataset) -> Action:
    """SFT of `model` on `dataset` at the study's first learning rate (specialists, full fine-tuning)."""
    sft = ACTION_TYPES["sft"](study.cfg.sft)
    return Action(sft, {"model": model, "dataset": dataset, "learning_rate": study.cfg.sft.learning_rate[0]}, study.cfg.seed)


def specialist_action(study: Study, base: ModelObject, task) -> Action:
    """The specialist of one task: SFT of the base on that task's training data (paper 3.1)."""
    return sft_action(study, base, study.specialist_dataset(task))


def prepare_base(cfg):
    """(folder, fingerprint, build) of the study's base model; the build copies it into a run."""
    base_dir = resolve_base_model(cfg.base_model, cfg.seed)
    if cfg.chat_template:
        from transformers import AutoTokenizer

        from lamdagent.models.chat_template import check_chat_template

        check_chat_template(AutoTokenizer.from_pretrained(base_dir), base_dir)
    # Scores depend on the chat-template setting, so it is part of every lineage's root.
    base_fp = fingerprint("base", cfg.base_model, architecture(base_dir), cfg.seed, *(["chat"] if cfg.chat_template else []))

    def copy_base(ctx: ActionContext) -> ActionOutput:
        shutil.copytree(base_dir, ctx.out_dir / "model")
        return ActionOutput(ctx.out_dir / "model")

    return base_dir, base_fp, copy_base


def ensure_seeds(study: Study, runner: Runner, existing: dict[str, ModelObject] | None = None) -> list[ModelObject]:
    """The initial objects as `seed` runs: the base model and, if configured, one specialist per
    task fine-tuned from the base (paper 3.1). Reused by fingerprint across explorations;
    `existing` (by name) are this exploration's finished seeds, kept when a resume completes them."""
    cfg = study.cfg
    existing = existing or {}

    def produce(name: str, **kwargs) -> Produced:
        if name in existing:
            model = existing[name]
            return Produced(model.run_id, model, tr.OK)
        produced = runner.produce(name=name, finish=True, **kwargs)
        if produced.model is None:
            raise UserError(f"could not build the initial models: {produced.error}")
        return produced

    base_dir, base_fp, copy_base = prepare_base(cfg)
    runner.base_dir = base_dir
    seeds: list[ModelObject] = []
    produced = produce("base", kind="seed", iteration=0, fp=base_fp, pipeline="base", inputs=[], build=copy_base,
                       tags={"source": cfg.base_model})
    base = produced.model
    base.path = base_dir
    seeds.append(base)
    if cfg.specialists and "sft" in ACTION_TYPES:
        for task in study.tasks:
            action = specialist_action(study, base, task)
            produced = produce(f"spec_{task.name}", kind="seed", iteration=0, fp=action.fingerprint,
                               pipeline=action.pipeline(), inputs=[base], build=lambda ctx, a=action: a.type.run(a.bindings, ctx),
                               tags={"action_type": "sft", "action": json.dumps(action.names())}, params=action.hparams)
            seeds.append(produced.model)
    runner.weights = task_weights([s.scores for s in seeds], study.task_names, cfg.task_weights)
    for seed in seeds:
        runner._with_score(seed.run_id, seed)
    return seeds

