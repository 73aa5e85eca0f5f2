"""One decision of greedy (the default policy's search) once an exploration holds 200 models, as a compute
budget with cheap merges reaches (`lopsided` at equal compute: 180 models in one exploration, where a
decision had grown to 17 s beside merges of 2 s, and 184 s under a profiler, because every valid action
of the pool was enumerated and ranked for each group of models it extends). The journal is built from
200 synthetic outcomes on `mosaic`'s action types, their scores on a plateau within the validation
noise (so the models greedy extends together are many, as in the exploration that showed it).
Target: < 5 s, against the minutes a real action takes."""

from __future__ import annotations

import random

from benchmarks._common import Options, Result, median, timed

NAME = "greedy_decision"
TARGET_S = 5.0


def journal_of(decisions: int):
    """`mosaic`'s study and a journal of `decisions` outcomes: random SFTs and merges of the pool, each
    scored near the best so far (within the noise of 50 validation examples per task)."""
    from lamdagent.config import load_config
    from lamdagent.exploration.study import Study
    from lamdagent.journal import Entry, Journal, ScoreNoise
    from lamdagent.space import Action, ModelObject

    study, rng = Study(load_config("mosaic")), random.Random(0)
    tasks = study.task_names

    def model(name: str, iteration: int, fingerprint: str, pipeline: str, parents) -> ModelObject:
        scores = {t: min(1.0, 0.5 + 0.05 * rng.random() + 0.001 * iteration) for t in tasks}
        return ModelObject(name, f"run-{name}", f"id-{name}", fingerprint, pipeline, "llama", scores, sum(scores.values()), iteration,
                           parents=list(parents))

    seeds = [model(name, 0, f"fp-{name}", name, []) for name in ["base", *(f"spec_{t}" for t in tasks)]]
    journal = Journal(list(tasks), decisions + 1, seeds, noise=ScoreNoise({t: 1.0 for t in tasks}, 50))
    types = study.action_types
    for iteration in range(1, decisions + 1):
        pool = journal.models()
        action_type = rng.choice(types)
        bindings = {}
        for slot in action_type.slots:
            choices = {"model": [m for m in pool if all(m is not b for b in bindings.values())], "dataset": study.datasets,
                       "hparam": action_type.hparam_choices().get(slot.name, [None])}[slot.kind]
            bindings[slot.name] = rng.choice(choices)
        action = Action(action_type, bindings, study.train_seed)
        made = model(f"m{iteration}", iteration, action.fingerprint, action.pipeline(), action.models)
        entry = journal.decide(Entry(iteration, made.run_id, action_type.name, action.names(), action.fingerprint, action.pipeline(),
                                     list(action.models), [m.name for m in pool]))
        journal.finish(entry.run_id, "ok", made)
    return study, journal


def run(opts: Options) -> Result:
    from lamdagent.agent.search import GreedyPolicy

    decisions = 20 if opts.quick else 200
    result = Result(NAME, f"greedy's next decision after {decisions} (mosaic's action types, scores within the noise)")
    study, journal = journal_of(decisions)
    times = []
    for _ in range(max(1, opts.repeats)):
        seconds, _ = timed(lambda: GreedyPolicy(seed=0).select(study.decision_space(journal), journal, decisions + 1))
        times.append(seconds)
    result.details = {"models": len(journal.models()), "seconds": times}
    result.check(f"one decision over {len(journal.models())} models (median)", median(times), "s", below=TARGET_S)
    return result
