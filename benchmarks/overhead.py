"""Framework overhead: one iteration through the tool (Runner.produce: fingerprint lookup, build,
evaluation, logging, registration) vs. the same SFT / TIES merge and evaluation done by a bare script
calling TRL, mergekit and the evaluator directly. Target: the tool's own seconds (outside the TRL /
evaluate calls both paths share) <= 1% of the demo SFT. The wall-clock ratios, and the toy merge
(0.4 s, where MLflow's per-model calls alone are ~10%), are reported only: a real action takes minutes."""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import time
from pathlib import Path

from benchmarks._common import Options, Result, Scratch, median, timed

NAME = "overhead"
TARGET = 0.01  # the tool's own seconds / the bare SFT
MERGE_BLOCKS = 10  # merge blocks per --repeats
SFT_BLOCKS = 5  # at least: two runs of the same SFT differ by up to 25% here, and a median of 3 blocks can land near 5%
QUICK = ["data.train_size=16", "data.val_size=4", "sft.epochs=1"]
_ids = itertools.count()


def bare_sft(s: Scratch, base_dir: Path, dataset, learning_rate: float, epochs: float, out: Path) -> dict[str, float]:
    """SFT with TRL, save, then evaluate the trained model: what a script without the tool does."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from lamdagent.evaluation.evaluator import evaluate
    from lamdagent.training.trainer import trainer_device_args  # bf16 on CUDA, fp32 on the CPU: the settings only

    cfg = s.cfg
    model, tokenizer = AutoModelForCausalLM.from_pretrained(base_dir), AutoTokenizer.from_pretrained(base_dir)
    rows = [{"prompt": ex.prompt, "completion": ex.target} for t in dataset.tasks for ex in t.examples("train", dataset.size, cfg.seed)]
    args = SFTConfig(output_dir=str(out / "trainer"), learning_rate=learning_rate, num_train_epochs=epochs,
                     per_device_train_batch_size=cfg.sft.batch_size, max_length=cfg.sft.max_length, seed=cfg.seed, data_seed=cfg.seed,
                     save_strategy="no", report_to="none", disable_tqdm=True, **trainer_device_args())
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    trainer.save_model(str(out / "model"))
    tokenizer.save_pretrained(out / "model")
    return evaluate(trainer.model, tokenizer, s.study.tasks, "val", cfg.data.val_size, seed=cfg.seed, batch_size=_batch(cfg)).scores


def bare_ties(s: Scratch, base_dir: Path, a: Path, b: Path, out: Path) -> dict[str, float]:
    """The TIES merge with mergekit, then load and evaluate the merged model."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lamdagent.evaluation.evaluator import evaluate

    cfg = s.cfg
    weight, density = float(cfg.ties.weight[0]), float(cfg.ties.density[0])
    config = {"merge_method": "ties", "base_model": str(base_dir), "dtype": "float32", "parameters": {"normalize": True},
              "models": [{"model": str(a), "parameters": {"weight": weight, "density": density}},
                         {"model": str(b), "parameters": {"weight": 1 - weight, "density": density}}]}
    options = MergeOptions(device="cpu", copy_tokenizer=True, random_seed=cfg.seed, lazy_unpickle=False, quiet=True)
    run_merge(MergeConfiguration.model_validate(config), str(out), options=options)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    return evaluate(model, tokenizer, s.study.tasks, "val", cfg.data.val_size, seed=cfg.seed, batch_size=_batch(cfg)).scores


def _batch(cfg) -> int:
    from lamdagent.evaluation.generation import resolve_batch_size

    return resolve_batch_size(cfg.evaluation.batch_size)


def specialists(s: Scratch, base) -> tuple:
    """Two models derived from the base (its weights plus seeded noise), children of it in the lineage:
    a merge costs the same whatever the models learnt."""
    import torch
    from transformers import AutoModelForCausalLM

    from lamdagent.space import ModelObject, fingerprint

    made = []
    for i, name in enumerate(("spec_a", "spec_b")):
        path = s.root / name
        if not (path / "config.json").exists():
            model = AutoModelForCausalLM.from_pretrained(base.path)
            generator = torch.Generator().manual_seed(i)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn(p.shape, generator=generator) * 0.02)
            model.save_pretrained(path)
            shutil.copy(base.path / "tokenizer.json", path / "tokenizer.json")
            shutil.copy(base.path / "tokenizer_config.json", path / "tokenizer_config.json")
        made.append(ModelObject(name, f"run-{name}", "", fingerprint(name), f"sft(base, {name})", base.arch, path=path, parents=[base]))
    return tuple(made)


def tool(s: Scratch, action, fp: str | None = None) -> tuple[str, dict[str, float]]:
    """One iteration's Runner.produce and the run's finish; a fresh fingerprint unless `fp` is given
    (then a repeat is served from the cache); (status, scores)."""
    from lamdagent.exploration.runner import Step
    from lamdagent.tracking import Kind

    i = next(_ids)
    step = dataclasses.replace(Step.of_action(action, Kind.ACTION, i + 1, f"m{i}"), fingerprint=fp or f"{action.fingerprint}-{i}")
    produced = s.runner.produce(step, finish=True)
    if produced.model is None:
        raise RuntimeError(f"the tool's {action.type.name} failed: {produced.error}")
    return produced.status, produced.model.scores


def warm_up(s: Scratch, base, merge_action):
    """One tiny SFT and the merge through the tool, untimed (imports, first-call caches); returns the tiny dataset."""
    from lamdagent.actions import ACTION_TYPES
    from lamdagent.space import Action

    dataset, lr = s.study.dataset(s.study.task_names[0]), float(s.cfg.sft.learning_rate[0])
    tiny = type(dataset)(dataset.name, dataset.tasks, 4, s.cfg.seed)
    sft = ACTION_TYPES["sft"](type(s.cfg.sft)(learning_rate=[lr], epochs=1))
    tool(s, Action(sft, {"model": base, "dataset": tiny, "learning_rate": lr}, s.cfg.seed))
    tool(s, merge_action)
    return tiny


class LibraryClock:
    """Seconds spent inside the calls both paths share (TRL's `Trainer.train`, mergekit's
    `run_merge`, the evaluator's `evaluate`), so that what a run spends outside them, its own
    work, is known without the machine's noise on the shared part."""

    def __init__(self):
        import mergekit.merge
        import transformers

        import lamdagent.evaluation.evaluator as evaluator
        import lamdagent.exploration.runner as runner

        self.seconds = 0.0
        self._patched = [(transformers.Trainer, "train"), (mergekit.merge, "run_merge"), (evaluator, "evaluate"), (runner, "evaluate")]
        self._originals = [getattr(owner, name) for owner, name in self._patched]

    def __enter__(self) -> LibraryClock:
        for (owner, name), original in zip(self._patched, self._originals):
            setattr(owner, name, self._timed(original))
        return self

    def __exit__(self, *exc) -> None:
        for (owner, name), original in zip(self._patched, self._originals):
            setattr(owner, name, original)

    def _timed(self, call):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
        return wrapper


def _blocks(repeats: int, bare, through_tool) -> dict:
    """`repeats` blocks of four runs, bare, tool, tool, bare (ABBA: a machine that drifts slower or
    faster over a block weighs on both sides alike); overhead = median over blocks of
    (tool + tool) / (bare + bare) - 1, and the same in CPU time and in seconds added. `own_s`:
    each run's seconds outside the shared library calls (see LibraryClock)."""
    seconds, cpu, own, scores = {"bare": [], "tool": []}, {"bare": [], "tool": []}, {"bare": [], "tool": []}, {}
    for _ in range(repeats):
        for label, call in (("bare", bare), ("tool", through_tool), ("tool", through_tool), ("bare", bare)):
            cpu_started = time.process_time()
            with LibraryClock() as clock:
                wall, scores[label] = timed(call)
            seconds[label].append(wall)
            cpu[label].append(time.process_time() - cpu_started)
            own[label].append(wall - clock.seconds)

    def per_block(values: dict, combine) -> list[float]:
        tool, bare = values["tool"], values["bare"]
        return [combine(tool[i] + tool[i + 1], bare[i] + bare[i + 1]) for i in range(0, len(bare), 2)]

    ratios = per_block(seconds, lambda t, b: t / b - 1)
    return {"bare_s": seconds["bare"], "tool_s": seconds["tool"], "block_overheads": ratios, "overhead": median(ratios),
            "added_s": median(per_block(seconds, lambda t, b: (t - b) / 2)), "bare_cpu_s": cpu["bare"], "tool_cpu_s": cpu["tool"],
            "cpu_overhead": median(per_block(cpu, lambda t, b: t / b - 1)), "bare_own_s": own["bare"], "tool_own_s": own["tool"],
            "own_added_s": median(per_block(own, lambda t, b: (t - b) / 2)), "same_scores": _same(scores.get("bare"), scores.get("tool"))}


def _same(a, b) -> bool:
    return a is not None and b is not None and all(abs(a[k] - b[k]) < 1e-9 for k in a)


def run(opts: Options) -> Result:
    from lamdagent.actions import ACTION_TYPES
    from lamdagent.space import Action

    result = Result(NAME, "framework overhead: Runner.produce vs a bare TRL / mergekit + evaluator script")
    s = Scratch("demo", QUICK if opts.quick else [])
    cfg, base = s.cfg, s.base()
    sft = ACTION_TYPES["sft"](cfg.sft)
    ties = ACTION_TYPES["ties"](cfg.ties)
    dataset = s.study.dataset(s.study.task_names[0])
    lr = float(cfg.sft.learning_rate[0])
    a, b = specialists(s, base)
    sft_action = Action(sft, {"model": base, "dataset": dataset, "learning_rate": lr}, cfg.seed)
    ties_action = Action(ties, {"model_a": a, "model_b": b, "weight": cfg.ties.weight[0], "density": cfg.ties.density[0]}, cfg.seed)
    work = s.root / "bare"

    def fresh(name: str) -> Path:
        shutil.rmtree(work / name, ignore_errors=True)
        return work / name

    # warm up both paths once at the smallest size (imports, first-call caches), untimed
    tiny = warm_up(s, base, ties_action)
    bare_sft(s, base.path, tiny, lr, 1, fresh("warm"))
    bare_ties(s, base.path, a.path, b.path, fresh("warm"))

    repeats = 1 if opts.quick else opts.repeats
    sft_blocks = 1 if opts.quick else max(repeats, SFT_BLOCKS)
    for label, blocks, bare, through_tool in (
        ("sft", sft_blocks, lambda: bare_sft(s, base.path, dataset, lr, cfg.sft.epochs, fresh("sft")), lambda: tool(s, sft_action)[1]),
        # a merge block takes ~2 s and its noise is of the order of the overhead: more blocks
        ("ties", repeats * MERGE_BLOCKS, lambda: bare_ties(s, base.path, a.path, b.path, fresh("ties")), lambda: tool(s, ties_action)[1]),
    ):
        figures = _blocks(blocks, bare, through_tool)
        result.details[label] = figures
        own_share = figures["own_added_s"] / median(figures["bare_s"])
        result.check(f"{label}: the tool's own seconds outside TRL / mergekit / evaluate, / bare", own_share, "ratio",
                     at_most=TARGET if label == "sft" else None)
        result.check(f"{label}: tool / bare - 1", figures["overhead"], "ratio")
        result.check(f"{label}: same, in CPU time of the process", figures["cpu_overhead"], "ratio")
        result.check(f"{label}: bare iteration (median)", median(figures["bare_s"]), "s")
        result.check(f"{label}: added by the tool per iteration (median of tool - bare)", figures["added_s"], "s")
        result.check(f"{label}: same, outside the shared TRL / mergekit / evaluate calls", figures["own_added_s"], "s")
    result.details["settings"] = {"study": "demo", "overrides": QUICK if opts.quick else [], "repeats": repeats,
                                  "sft_blocks": sft_blocks,
                                  "merge_blocks": repeats * MERGE_BLOCKS,
                                  "sft": {"dataset": dataset.name, "examples": dataset.num_examples, "epochs": cfg.sft.epochs},
                                  "val_examples": cfg.data.val_size * len(s.study.tasks)}
    shutil.rmtree(s.root, ignore_errors=True)
    return result
