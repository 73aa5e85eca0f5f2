"""The journal's answers (best model, trailing failures, what was tried, what is left) and its
no-gain marking: an action whose model scores exactly like its input is marked, said in the agent's
prompt, and that kind of action is not offered on that model again, to any policy."""

import dataclasses

import pytest

from lamdagent.agent import prompts
from lamdagent.agent.policies import POLICIES
from lamdagent.journal import Entry, models_from_records, read_journal
from lamdagent.space.lineage import related
from lamdagent.tracking import Record
from tests.journals import journal_of, made
from tests.test_space import _model, _space


def _scored(name, score, **scores):
    return dataclasses.replace(_model(name), score=score, scores=scores)


def test_the_journal_answers_the_loops_questions():
    journal = journal_of([_scored("base", 0.5, arith=0.1), _scored("a", 2.0, arith=0.9)], budget=5)
    space = _space(journal.models())
    first = space.find("sft", {"model": "a", "dataset": "arith", "learning_rate": "0.001"})
    made(journal, first, "m1", 2.5, 1, {"arith": 1.0})
    failed = journal.decide(Entry(2, "run-m2", "sft", {"model": "m1"}, "fp-m2", "sft(m1)", [], ["base", "a", "m1"]))
    journal.finish(failed.run_id, "failed", None, "NaN loss")
    assert journal.best().name == "m1" and journal.best_score() == 2.5
    assert journal.trailing_failures() == 1 and journal.tried_types() == {"sft"}
    assert journal.remaining() == [3, 4, 5] and first.fingerprint in journal.done()
    assert [m.name for m in journal.models()] == ["base", "a", "m1"]
    assert [m.name for m in journal.pool_at(journal.entries[0])] == ["base", "a"]


def test_a_compute_budget_in_operations_counts_the_overhead_and_each_outcome_and_says_what_was_not_counted():
    journal = journal_of([_scored("base", 0.5, arith=0.1)], budget=5)
    journal.budget_flops, journal.overhead_flops = 10.0, 4.0
    for i, flops in enumerate((3.0, 2.0), start=1):
        entry = journal.decide(Entry(i, f"run-{i}", "sft", {}, f"fp-{i}", "sft()", [], ["base"]))
        assert not journal.out_of_compute()  # 4 + 3 < 10 before the second finished; one running action counts nothing yet
        journal.finish(entry.run_id, "ok", None, cost_seconds=1.0, cost_flops=flops)
    assert journal.spent_flops() == 9.0 and not journal.out_of_compute() and not journal.uncounted()
    entry = journal.decide(Entry(3, "run-3", "sft", {}, "fp-3", "sft()", [], ["base"]))
    journal.finish(entry.run_id, "cached", None, cost_seconds=1.0, cost_flops=None)  # reused from a run made before the count
    assert journal.uncounted() and journal.spent_flops() == 9.0
    entry = journal.decide(Entry(4, "run-4", "sft", {}, "fp-4", "sft()", [], ["base"]))
    journal.finish(entry.run_id, "ok", None, cost_flops=1.0)
    assert journal.out_of_compute()  # 10 of 10
    journal.entries[2].cost_seconds = None  # a worker lost: nothing measured, in either unit, is not a step missing its count
    assert not journal.uncounted()
    journal.budget_flops, journal.budget_seconds = None, 3.5  # the seconds budget alone: 3 s spent (the last one measured none)
    assert not journal.out_of_compute()


def test_a_no_gain_action_is_marked_said_and_not_extended_by_any_policy(fake_openai):
    journal = journal_of([_scored("base", 0.5, arith=0.1, facts=0.0), _scored("a", 2.0, arith=0.9, facts=0.4),
                          _scored("b", 1.0, arith=0.0, facts=0.8)])
    merge = _space(journal.models()).find("ties", {"model_a": "a", "model_b": "b", "weight": "0.5", "density": "0.5"})
    copy = made(journal, merge, "m1", 2.0, 1, {"arith": 0.9, "facts": 0.4})  # exactly a's scores: a near-copy of a
    entry = journal.entries[-1]
    assert entry.no_gain and entry.same_as.name == "a" and journal.no_gain() == {"m1": entry}
    assert "NO GAIN: exactly the scores of its input a" in prompts.result_text(journal, entry)

    space = _space(journal.models())
    space.blocked = journal.blocked()
    offered = [a for t in space.available_types() for a in space.actions(t)]
    same_kind = [a for a in offered if a.kind == merge.kind and copy in a.models]
    assert not same_kind  # the same kind (type and hyperparameters), on the copy, with any partner: not offered
    assert [a for a in offered if a.type.name == "ties" and a.names()["weight"] == "0.7" and copy in a.models]  # another weight is another kind
    assert [a for a in offered if a.type.name == "sft" and copy in a.models]
    assert "[NO GAIN: the same scores as its input a]" in prompts.action_type_prompt(journal, 2, space, space.available_types())
    for name in POLICIES:
        policy = POLICIES[name].from_config(None, 0) if not POLICIES[name].uses_chat else None
        if policy is None:
            continue
        for iteration in range(2, 6):
            action = policy.select(space, journal, iteration).action
            assert not (action.kind == merge.kind and copy in action.models), (name, str(action))


def test_a_model_is_not_merged_with_its_own_copy():
    """A fine-tune that changed no target's score is a copy of its input by the targets' measure; a merge
    of the two (or of two copies of one model) gives those scores again, so no policy is offered it."""
    journal = journal_of([_scored("base", 0.5, arith=0.1, facts=0.0), _scored("a", 2.0, arith=0.9, facts=0.4),
                          _scored("b", 1.0, arith=0.0, facts=0.8)])
    sft = _space(journal.models()).find("sft", {"model": "a", "dataset": "facts", "learning_rate": "0.001"})
    made(journal, sft, "m1", 2.0, 1, {"arith": 0.9, "facts": 0.4})  # a copy of a
    merge = _space(journal.models()).find("ties", {"model_a": "b", "model_b": "m1", "weight": "0.5", "density": "0.5"})
    made(journal, merge, "m2", 2.0, 2, {"arith": 0.9, "facts": 0.4})  # a copy of m1, so of a
    assert journal.copies() == {"m1": "a", "m2": "a"}
    space = _space(journal.models())
    space.blocked, space.copies = journal.blocked(), journal.copies()
    merges = {frozenset(m.name for m in x.models) for x in space.actions("ties")}
    assert not merges & {frozenset(("a", "m1")), frozenset(("a", "m2")), frozenset(("m1", "m2"))}
    assert frozenset(("a", "b")) in merges and frozenset(("b", "m2")) in merges  # other partners stay
    assert [x for x in space.actions("sft") if x.models[0].name == "m2"]  # and so do the copies' own fine-tunes


@pytest.mark.parametrize("scores, no_gain", [({"arith": 0.9, "facts": 0.4}, True), ({"arith": 0.9, "facts": 0.42}, False)])
def test_no_gain_means_exactly_the_scores_of_an_input(scores, no_gain):
    journal = journal_of([_scored("a", 2.0, arith=0.9, facts=0.4), _scored("b", 1.0, arith=0.0, facts=0.8)])
    merge = _space(journal.models()).find("ties", {"model_a": "a", "model_b": "b", "weight": "0.5", "density": "0.5"})
    made(journal, merge, "m1", 2.0, 1, scores)
    assert journal.entries[-1].no_gain is no_gain and bool(journal.blocked()) is no_gain


def test_models_read_back_are_linked_to_their_parents_whatever_the_records_order():
    """On resume the initial models are read from the tracking server in its order, not the order
    they were made: the lineage (and what greedy reads from it) must be the same either way."""
    base = Record("run-base", "seed", 0, "base", "ok", pipeline="base", fingerprint="fp-base")
    spec = Record("run-spec", "seed", 0, "spec_arith", "ok", pipeline="sft(base, arith)", fingerprint="fp-spec", inputs=["run-base"])
    merged = Record("run-m1", "action", 1, "m1", "ok", pipeline="ties(spec_arith, base)", fingerprint="fp-m1", inputs=["run-spec", "run-base"])
    for order in ([base, spec, merged], [merged, spec, base]):
        models = {m.name: m for m in models_from_records(order)}
        assert [p.name for p in models["spec_arith"].parents] == ["base"]
        assert [p.name for p in models["m1"].parents] == ["spec_arith", "base"]
        assert related(models["m1"], models["base"]) and related(models["spec_arith"], models["base"])


def test_the_initial_models_an_action_made_are_read_back_as_outcomes_of_iteration_zero():
    """A specialist is a full fine-tune of the base on its data, measured before the first decision:
    the journal holds it as an outcome a policy learns from, not as a decision of the budget."""
    base = Record("run-base", "seed", 0, "base", "ok", pipeline="base", fingerprint="fp-base")
    spec = Record("run-spec", "seed", 0, "spec_arith", "ok", pipeline="sft(base, arith)", fingerprint="fp-spec", inputs=["run-base"],
                  action_type="sft", action={"model": "base", "dataset": "arith", "learning_rate": "0.001"})
    seeds = models_from_records([spec, base])
    for model, score in zip(seeds, (2.0, 0.5)):
        model.score = score
    journal = read_journal([spec, base], sorted(seeds, key=lambda m: m.name), ["arith"], 3)
    [made] = journal.initial_actions
    assert (made.action_type, made.action["dataset"], made.model.name, made.pool) == ("sft", "arith", "spec_arith", ["base"])
    assert made.gain == pytest.approx(1.5) and made.iteration == 0
    assert journal.finished() == [] and journal.remaining() == [1, 2, 3] and journal.measured() == [made]
