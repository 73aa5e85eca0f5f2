"""The action space a policy decides from once an exploration holds 200 models (a compute budget
with merges of a small model reaches that: `mosaic` at equal compute made 230 models in one
exploration): every valid action of `mosaic`'s types (SFT on 9 datasets x 2 learning rates, DARE-TIES
at 2 weights, SLERP; 122,442 actions) enumerated, with some done, blocked and copied, as a policy
does before each decision. Target: < 5 s, against the minutes a real action takes (7.6 s here before
the actions' fingerprints were cached; the pairs, and so the cost, grow with the square of the pool)."""

from __future__ import annotations

import random

from benchmarks._common import Options, Result, median, timed

NAME = "action_space"
TARGET_S = 5.0


def pool(models: int):
    """The study's action space over `models` synthetic models, with some actions done and blocked and
    some models copies of others (what the journal gives an exploration after no-gain actions)."""
    from lamdagent.config import load_config
    from lamdagent.exploration.study import Study
    from lamdagent.space.objects import ModelObject

    study, rng = Study(load_config("mosaic")), random.Random(0)
    found = [ModelObject(name="base" if i == 0 else f"m{i}", run_id=f"r{i}", model_id=f"id{i}", fingerprint=f"fp{i:05d}",
                         pipeline=f"p{i}", arch="llama", scores={t: rng.random() for t in study.task_names}, iteration=i)
             for i in range(models)]
    plain = study.space(found)
    sample = plain.actions("slerp")[:60] + plain.actions("sft")[:60]
    done = {a.fingerprint for a in sample[::3]}
    blocked = {(a.kind, a.models[0].name) for a in sample[1::5]}
    copies = {f"m{i}": f"m{i + 1}" for i in range(5, models - 1, 9)}
    return study.space(found, done, blocked, copies)


def enumerate_all(space) -> int:
    return sum(len(space.actions(name)) for name in space.available_types())


def run(opts: Options) -> Result:
    models = 20 if opts.quick else 200
    result = Result(NAME, f"enumerating every valid action over {models} models (mosaic's action types)")
    space = pool(models)
    times, count = [], 0
    for _ in range(max(1, opts.repeats)):
        seconds, count = timed(lambda: enumerate_all(space))
        times.append(seconds)
    result.details = {"models": models, "actions": count, "seconds": times}
    result.check(f"every valid action over {models} models ({count} actions, median)", median(times), "s", below=TARGET_S)
    return result
