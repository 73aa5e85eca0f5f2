"""The initial objects: the base model and one specialist per task (paper 3.1), as seed runs."""

from __future__ import annotations

from pathlib import Path

from lamdagent.actions import ACTION_TYPES
from lamdagent.errors import UserError
from lamdagent.evaluation.evaluator import task_weights
from lamdagent.exploration.runner import BaseModel, Runner, Step
from lamdagent.exploration.study import Study
from lamdagent.models.digest import weights_digest
from lamdagent.models.folders import architecture, resolve_base_model
from lamdagent.space import Action, ModelObject, fingerprint
from lamdagent.tracking import Kind, tag


def sft_action(study: Study, model: ModelObject, dataset, seed: int | None = None) -> Action:
    """SFT of `model` on `dataset` at the study's first learning rate (specialists, full fine-tuning),
    trained with `seed` (default: the study's)."""
    sft = ACTION_TYPES["sft"](study.cfg.sft.fixed())
    return Action(sft, {"model": model, "dataset": dataset, "learning_rate": study.cfg.sft.learning_rate[0]},
                  study.cfg.seed if seed is None else seed)


def specialist_action(study: Study, base: ModelObject, task) -> Action:
    """The specialist of one task: SFT of the base on that task's training data (paper 3.1)."""
    return sft_action(study, base, study.specialist_dataset(task))


def prepare_base(cfg) -> BaseModel:
    """The study's base model, resolved (built, for a builtin one) and fingerprinted."""
    base_dir = resolve_base_model(cfg.base_model, cfg.seed)
    if cfg.chat_template:
        from transformers import AutoTokenizer

        from lamdagent.models.chat_template import check_chat_template

        check_chat_template(AutoTokenizer.from_pretrained(base_dir), base_dir)
    # Scores depend on the weights and the chat-template setting, so both are part of every lineage's root.
    digest = weights_digest(base_dir)
    base_fp = fingerprint("base", cfg.base_model, architecture(base_dir), digest, cfg.seed, *(["chat"] if cfg.chat_template else []))
    return BaseModel(Path(base_dir), base_fp, cfg.base_model, digest)


def announce_other_builds(runner: Runner) -> None:
    """Say on the console when the store holds models of the same `base_model` built from other weights
    (another machine's build of a built-in base, a changed folder) or made before the weights were
    fingerprinted: none of them is reused here, and their scores are not comparable with these."""
    base = runner.base
    if "'" in base.source:  # not expressible in a search filter; nothing to say rather than a wrong answer
        return
    runs = runner.tracker.search_runs(runner.experiment_id, f"tags.`{tag('pipeline')}` = 'base' and tags.`{tag('source')}` = '{base.source}'")
    digests = [run.data.tags.get(tag("base_digest"), "") for run in runs]
    others = sorted({d for d in digests if d and d != base.digest})
    unknown = digests.count("")
    if others:
        runner.display.log_once(f"other-builds/{base.source}",
                                f"this store holds models of {base.source} built from other weights (sha256 {', '.join(d[:12] for d in others)}; "
                                f"here {base.digest[:12]}): another machine's build or a changed folder. None of them is reused, and their "
                                "scores compare only with each other's")
    if unknown:
        runner.display.log_once(f"unfingerprinted/{base.source}",
                                f"this store holds {unknown} base run(s) of {base.source} made before the base's weights were part of every "
                                "fingerprint: the models made from them are not reused here")


DEFAULTS_PREFIX = "ft_"  # the practitioner's defaults among the initial models: ft_<dataset>


def sets_weights(seed_name: str) -> bool:
    """Whether an initial model is one that w_t comes from: the base and the specialists, not the
    practitioner's defaults (their scores vary with train_seed; the weights are the world's)."""
    return not seed_name.startswith(DEFAULTS_PREFIX)


def specialist_name(task_name: str) -> str:
    """The name of the initial model fine-tuned on one task's data (paper 3.1)."""
    return f"spec_{task_name}"


def seed_names(study: Study) -> list[str]:
    """The initial models' names in the order `ensure_seeds` makes them: the base, the specialists,
    then the practitioner's defaults."""
    specialists = [specialist_name(task.name) for task in study.tasks] if study.cfg.specialists and "sft" in ACTION_TYPES else []
    return ["base", *specialists, *(f"{DEFAULTS_PREFIX}{name}" for name in study.cfg.seed_models)]


def seed_order(study: Study, seeds: list[ModelObject]) -> list[ModelObject]:
    """`seeds` (read back in any order) in the order `ensure_seeds` gives them; others last."""
    order = seed_names(study)
    return sorted(seeds, key=lambda m: order.index(m.name) if m.name in order else len(order))


def initial_weights(study: Study, seeds: list[ModelObject]) -> dict[str, float]:
    """w_t = 1 / max r_t over the initial models that set the weights (the base and the specialists)."""
    return task_weights([s.scores for s in seeds if sets_weights(s.name)], study.task_names, study.cfg.task_weights)


def ensure_seeds(study: Study, runner: Runner, existing: dict[str, ModelObject] | None = None) -> tuple[list[ModelObject], dict[str, float]]:
    """The initial objects as `seed` runs: the base model and, if configured, one specialist per
    task fine-tuned from the base (paper 3.1), and the task weights w_t = 1 / max r_t they give;
    then the practitioner's defaults (`seed_models`: the base fine-tuned on each named dataset at the
    default settings, `ft_<dataset>`), which a search refines instead of rediscovering. The weights
    come from the base and the specialists only, so scores compare with and without the defaults.
    Reused by fingerprint across explorations; `existing` (by name) are this exploration's
    finished seeds, kept when a resume completes them."""
    cfg = study.cfg
    existing = existing or {}

    def produce(step: Step) -> ModelObject:
        if step.name in existing:
            return existing[step.name]
        produced = runner.produce(step, finish=True)
        if produced.model is None:
            raise UserError(f"could not build the initial models: {produced.error}")
        return produced.model

    announce_other_builds(runner)
    base = produce(Step.of_base(runner.base, Kind.SEED))
    base.path = runner.base.path
    seeds = [base]
    if cfg.specialists and "sft" in ACTION_TYPES:
        seeds += [produce(Step.of_action(specialist_action(study, base, task), Kind.SEED, 0, specialist_name(task.name))) for task in study.tasks]
    seeds += [produce(Step.of_action(sft_action(study, base, study.dataset(name), study.train_seed), Kind.SEED, 0, f"{DEFAULTS_PREFIX}{name}"))
              for name in cfg.seed_models]
    weights = initial_weights(study, seeds)
    scoring = runner.with_weights(weights)
    for seed in seeds:
        scoring.log_score(seed)
    return seeds, weights
