"""The greedy and optuna policies: they extend what worked, and learn from their own outcomes."""

import dataclasses

import pytest

from lamdagent.agent.facts import facts
from lamdagent.agent.llm import OpenAIChatModel
from lamdagent.agent.policies import LLMPolicy
from lamdagent.agent.search import UNTRIED_BONUS, GreedyPolicy, GuidedPolicy, OptunaPolicy, Outcome, features, ranked_models, ranks_of, untried
from lamdagent.journal import ScoreNoise
from lamdagent.journal.journal import PATIENCE
from lamdagent.space import lineage
from tests.journals import journal_of, made
from tests.test_space import _model, _space


def _scored(name: str, score: float, iteration: int = 0):
    return dataclasses.replace(_model(name), score=score, iteration=iteration)


def test_greedy_extends_the_best_model():
    models = [_scored("base", 0.5), _scored("a", 2.0), _scored("b", 1.0)]
    action = GreedyPolicy(seed=0).select(_space(models), journal_of(models), 1).action
    assert action.models[0].name == "a"
    if action.type.name == "ties":
        assert action.models[1].name == "b"  # the best partner


def test_greedy_repeats_the_kind_of_action_that_gained_and_avoids_one_that_lost():
    policy = GreedyPolicy(seed=0)
    journal = journal_of([_scored("base", 0.5), _scored("a", 2.0)])
    first = policy.select(_space(journal.models()), journal, 1).action
    gained = features(first, ranks_of(ranked_models(journal.models())))
    made(journal, first, "m1", 3.0, 1)  # it gained 1.0: the new best
    second = GreedyPolicy(seed=0).select(_space(journal.models()), journal, 2).action  # a new policy object: the journal is the history
    assert second.models[0].name == "m1"
    f = features(second, ranks_of(ranked_models(journal.models())))
    assert (f["type"], f["data"], f["hparams"]) == (gained["type"], gained["data"], gained["hparams"])

    made(journal, second, "m2", 0.1, 2)  # the same kind now lost badly on average
    third = policy.select(_space(journal.models()), journal, 3).action
    f3 = features(third, ranks_of(ranked_models(journal.models())))
    assert third.models[0].name == "m1" and (f3["type"], f3["data"], f3["hparams"]) != (gained["type"], gained["data"], gained["hparams"])


def test_greedy_does_not_repeat_a_kind_that_gained_nothing_while_untried_kinds_remain():
    policy = GreedyPolicy(seed=0)
    journal = journal_of([_scored("base", 0.5), _scored("a", 2.0)])
    kinds = []
    for iteration in range(1, 5):
        action = policy.select(_space(journal.models()), journal, iteration).action
        f = features(action, ranks_of(ranked_models(journal.models())))
        kinds.append((f["type"], f["data"], f["hparams"]))
        made(journal, action, f"m{iteration}", 2.0, iteration)  # every action gains exactly nothing
    assert len(set(kinds)) == 4, kinds


def test_greedy_grows_another_lineage_once_patience_decisions_in_a_row_did_not_beat_the_best():
    journal = journal_of([_scored("base", 0.5), _scored("a", 2.0), _scored("b", 1.0)])
    extended = []
    for iteration, score in enumerate([1.5, 1.8, 1.9, 1.2], start=1):  # none beats a
        action = GreedyPolicy(seed=0).select(_space(journal.models()), journal, iteration).action
        extended.append(action.models[0].name)
        assert ("No decision beat a" in facts(journal)) == (iteration > PATIENCE)  # the agent's memory says so too
        made(journal, action, f"m{iteration}", score, iteration)
        assert journal.since_best() == iteration
    assert extended[0] == "a" and set(extended[:PATIENCE]) <= {"a", "m1", "m2"}  # hill-climbing from a while it holds
    assert extended[PATIENCE] == "b"  # a's lineage held the budget for PATIENCE decisions: the best model outside it grows
    a = journal.best()
    outside = [m for m in ranked_models(journal.models()) if not lineage.related(a, m)]
    assert a.name == "a" and outside[0].name in ("m4", "b")  # m4 is outside too unless it merged b with a's line
    assert f"the best models outside it: {outside[0].name}" in facts(journal)
    nxt = GreedyPolicy(seed=0).select(_space(journal.models()), journal, 5).action
    assert nxt.models[0].name == outside[0].name  # the other line goes on while a stays unbeaten
    made(journal, nxt, "m5", 2.4, 5)  # it beats a: plain hill-climbing again, from the new best
    assert journal.since_best() == 0
    assert GreedyPolicy(seed=0).select(_space(journal.models()), journal, 6).action.models[0].name == "m5"


def _dip(noise: ScoreNoise, second_score: float) -> tuple[str, str, bool]:
    """Greedy's third decision after a kind gained (a -> m1) and was repeated on m1 (-> m2, scored
    `second_score`): which model it extends, and whether with the same kind."""
    journal = journal_of([_scored("base", 0.5), _scored("a", 2.0)])
    journal.noise = noise
    half = {"arith": 0.5, "facts": 0.5}
    first = GreedyPolicy(seed=0).select(_space(journal.models()), journal, 1).action
    kind = features(first, ranks_of(ranked_models(journal.models())))
    made(journal, first, "m1", 3.0, 1, half)
    second = GreedyPolicy(seed=0).select(_space(journal.models()), journal, 2).action
    assert second.models[0].name == "m1" and features(second, ranks_of(ranked_models(journal.models()))) == {**kind, "rank_a": "0"}
    made(journal, second, "m2", second_score, 2, half)
    told = "the validation set cannot tell m1 from m2" in facts(journal)  # the agent's memory says what greedy acts on
    assert told == journal.noise.tied(journal.model("m1"), journal.model("m2"))
    assert ("by about 0.10 by chance" in facts(journal)) == bool(noise.weights)
    space = _space(journal.models(), done=journal.done())  # as the loop offers it
    third = GreedyPolicy(seed=0).select(space, journal, 3).action
    proposals = GreedyPolicy(seed=0).proposals(space, journal, 3, limit=4)
    assert str(proposals[0]) == str(third) and len(proposals) == 4  # a group offers as many as single models
    assert {p.type.name for p in proposals[:2]} == {"sft", "ties"}  # each type's best first, then each model's
    f = features(third, ranks_of(ranked_models(journal.models())))
    return third.models[0].name, third.type.name, (f["type"], f["data"], f["hparams"]) == (kind["type"], kind["data"], kind["hparams"])


def test_greedy_goes_on_with_a_kind_that_gained_through_a_dip_the_validation_set_cannot_tell_from_chance():
    noise = ScoreNoise({"arith": 1.0, "facts": 1.0}, examples=50)  # each score within about 0.1, a difference within 0.14
    assert noise.error(dataclasses.replace(_model("x"), scores={"arith": 0.5, "facts": 0.5})) == pytest.approx(0.1)
    assert _dip(noise, 2.9) == ("m2", "sft", True)  # 0.1 below m1: chance; the kind that gained goes on from m2
    assert _dip(noise, 2.5)[0] == "m1"  # 0.5 below: a real loss; greedy turns to m1's other actions
    assert _dip(ScoreNoise(), 2.9)[0] == "m1"  # no noise known: every score exact, as before


def test_score_noise_bounds_the_standard_error_of_a_weighted_score():
    noise = ScoreNoise({"arith": 2.0, "facts": 1.0}, examples=100)
    model = dataclasses.replace(_model("x"), scores={"arith": 0.2, "facts": 1.0}, score=1.4)
    assert noise.error(model) == pytest.approx(2.0 * (0.2 * 0.8 / 100) ** 0.5)  # a perfect task does not vary
    near, far = dataclasses.replace(model, score=1.3), dataclasses.replace(model, score=1.0)
    assert noise.tied(model, near) and not noise.tied(model, far)
    assert ScoreNoise().error(model) == 0.0 and not ScoreNoise().tied(model, near)


def test_greedy_merges_the_best_model_with_a_partner_outside_its_own_lineage():
    models = [_scored("base", 0.5), _scored("a", 2.0), _scored("b", 1.0), _scored("c", 0.8)]
    journal = journal_of(models)
    merge = next(a for a in _space(models).actions("ties") if [m.name for m in a.models] == ["a", "b"])
    made(journal, merge, "m1", 3.0, 1)  # the new best, made from a and b
    proposals = GreedyPolicy(seed=0).proposals(_space(journal.models()), journal, 2, limit=2)
    ties = next(p for p in proposals if p.type.name == "ties")
    assert [m.name for m in ties.models] == ["m1", "c"]  # a ranks higher, but merged with m1 it only moves back toward a


def test_greedy_proposals_start_with_its_choice_and_offer_each_type_of_the_best_models():
    models = [_scored("base", 0.5), _scored("a", 2.0), _scored("b", 1.0)]
    space, journal = _space(models), journal_of(models)
    proposals = GreedyPolicy(seed=0).proposals(space, journal, 1, limit=4)
    assert str(proposals[0]) == str(GreedyPolicy(seed=0).select(space, journal, 1).action)
    assert [(p.models[0].name, p.type.name) for p in proposals[:2]] in ([("a", "sft"), ("a", "ties")], [("a", "ties"), ("a", "sft")])
    assert [p.models[0].name for p in proposals] == ["a", "a", "b", "b"]


def _guided(server) -> GuidedPolicy:
    return GuidedPolicy(LLMPolicy(OpenAIChatModel("fake-model", api_key="sk-test", base_url=server.base_url, max_retries=0)))


def test_guided_takes_the_proposal_the_llm_names_and_learns_like_greedy(fake_openai):
    models = [_scored("base", 0.5), _scored("a", 2.0), _scored("b", 1.0)]
    space, journal = _space(models), journal_of(models)
    proposals = GreedyPolicy(seed=0).proposals(space, journal, 1, limit=4)
    fake_openai.script = ['{"proposal": "3"}']
    policy = _guided(fake_openai)
    decision = policy.select(space, journal, 1)
    assert str(decision.action) == str(proposals[2]) and decision.fallbacks == [] and decision.steps == 1
    (prompt,) = fake_openai.prompts()
    assert "3. " + str(proposals[2]) in prompt and "input scores: b 1.000" in prompt
    assert prompt.index("- a = ") < prompt.index("- b = ") < prompt.index("- base = ")  # models best first
    schema = fake_openai.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["proposal"]["enum"] == ["1", "2", "3", "4"]
    assert policy.chat is policy.llm.chat and policy.structured_form == "json_schema"  # what the loop traces and reports on


def test_guided_records_whether_the_llm_took_the_first_proposal_and_stops_asking_once_its_other_picks_did_worse(fake_openai):
    models = [_scored("base", 0.5), _scored("a", 2.0), _scored("b", 1.0)]
    journal = journal_of(models)
    fake_openai.script = ['{"proposal": "1"}', '{"proposal": "2"}']
    assert [_guided(fake_openai).select(_space(models), journal, i).origin for i in (1, 2)] == ["first", "other"]
    for iteration, (origin, gain) in enumerate((("other", -0.4), ("first", 0.2), ("other", 0.0)), start=1):
        action = [x for x in _space(journal.models()).actions("sft") if x.names()["model"] == "a"][iteration]  # on a (score 2.0)
        made(journal, action, f"m{iteration}", 2.0 + gain, iteration)
        journal.entries[-1].origin = origin
    requests = len(fake_openai.requests)
    decision = _guided(fake_openai).select(_space(journal.models()), journal, 4)
    assert len(fake_openai.requests) == requests and decision.origin == "proposal"
    assert str(decision.action) == str(GreedyPolicy(seed=0).select(_space(journal.models()), journal, 4).action)
    assert decision.notice == "not asked: its 2 picks of another proposal gained -0.200 on average, its picks of the first +0.200"

def test_optuna_learns_which_kind_of_action_pays():
    policy = OptunaPolicy(seed=0)
    journal = journal_of([_scored("base", 0.5), _scored("a", 1.0), _scored("b", 1.0)])
    chosen = []
    for iteration in range(1, 13):
        space = _space(journal.models())
        action = policy.select(space, journal, iteration).action
        assert space.find(action.type.name, action.names()) is not None
        chosen.append(action.type.name)
        score = 2.0 + iteration / 100 if action.type.name == "ties" else 0.2  # merges pay in this world, SFT does not
        made(journal, action, f"m{iteration}", score, iteration)
    assert chosen[-4:].count("ties") >= 3, chosen  # after its start-up trials it exploits what paid


def test_optuna_features_cover_the_studys_vocabulary():
    space = _space([_scored("base", 0.5), _scored("a", 1.0)])
    vocabulary = OptunaPolicy.vocabulary(space)
    for name in space.available_types():
        for action in space.actions(name):
            f = features(action, ranks_of(ranked_models(space.models)))
            assert all(f[k] in vocabulary[k] for k in vocabulary), f


@pytest.mark.slow
@pytest.mark.parametrize("name", ["greedy", "optuna"])
def test_the_search_policies_drive_an_exploration(tracking_uri, name):
    from rich.console import Console

    from lamdagent.console import Display
    from lamdagent.exploration.loop import start_or_resume
    from lamdagent.tracking import Kind, Status, Tracker
    from tests.conftest import FAST

    with Display(Console(quiet=True)) as display:
        overrides = [*FAST, "iterations=2", f"agent.policy={name}", "tasks=[arith,facts]", "datasets=[arith,facts,all]"]
        _, records, _ = start_or_resume("demo", overrides, None, Tracker(), display)
    actions = [r for r in records if r.kind == Kind.ACTION]
    assert [r.iteration for r in actions] == [1, 2] and all(r.status == Status.OK for r in actions)
    client = __import__("mlflow").MlflowClient()
    assert {client.get_run(r.run_id).data.tags["lamdagent.policy"] for r in actions} == {name}


def test_greedy_expects_a_learning_rate_that_gained_on_one_dataset_to_gain_on_another_and_one_that_lost_to_lose():
    from lamdagent.space import ActionSpace
    from tests.test_space import _space as plain_space

    journal = journal_of([_scored("base", 0.5), _scored("a", 2.0)])

    def sft(model, data, rate):
        return plain_space(journal.models()).find("sft", {"model": model, "dataset": data, "learning_rate": rate})

    made(journal, sft("a", "arith", "0.001"), "m1", 3.0, 1)  # 1e-3 gained on arith
    made(journal, sft("a", "arith", "0.003"), "m2", 1.0, 2)  # 3e-3 lost on it
    done = {sft("m1", "arith", "0.001").fingerprint}  # what worked was done on the best model: which untried kind comes next?
    plain = plain_space(journal.models())
    for seed in range(8):
        space = ActionSpace(list(plain.action_types.values()), journal.models(), plain.datasets, done=done)
        action = GreedyPolicy(seed=seed).select(space, journal, 3).action
        assert action.names() == {"model": "m1", "dataset": "facts", "learning_rate": "0.001"}, (seed, str(action))


def test_an_outcome_predicts_the_same_share_of_each_targets_room_left_on_another_model():
    outcome = Outcome({}, 0.2, 0.6, before={"arith": 0.2, "facts": 0.5}, after={"arith": 0.6, "facts": 0.4})
    weights = {"arith": 2.0, "facts": 1.0}
    # arith closed half of the 0.8 left: on a model at 0.9, half of 0.1; facts lost a fifth of its score: a fifth of 1.0
    assert outcome.gain_on({"arith": 0.9, "facts": 1.0}, weights) == pytest.approx(2.0 * 0.05 - 1.0 * 0.2)
    assert outcome.gain_on({"arith": 0.2, "facts": 0.5}, weights) == pytest.approx(2.0 * 0.4 - 1.0 * 0.1)  # its own input: as measured
    assert outcome.gain_on({"arith": 0.9}, {}) == outcome.gain  # no weights known: the measured gain
    assert Outcome({}, 0.2, 0.6).gain_on({"arith": 0.9}, weights) == outcome.gain  # no per-task scores (a merge): the measured gain


def _after_two_fine_tunes(noise: ScoreNoise):
    """Greedy's choice after sft(base, facts) taught facts from nothing (the best model, m1) and
    sft(base, arith) raised arith by less."""
    base = dataclasses.replace(_model("base"), score=0.1, scores={"arith": 0.1, "facts": 0.0})
    journal = journal_of([base])
    journal.noise = noise
    sft = {a.names()["dataset"]: a for a in _space([base]).actions("sft") if a.names()["learning_rate"] == "0.001"}
    made(journal, sft["facts"], "m1", 1.0, 1, {"arith": 0.1, "facts": 0.9})
    made(journal, sft["arith"], "m2", 0.5, 2, {"arith": 0.5, "facts": 0.0})
    action = GreedyPolicy(seed=0).select(_space(journal.models(), done=journal.done()), journal, 3).action
    return action.names()["model"], action.names().get("dataset")


def test_greedy_does_not_teach_the_best_model_again_what_it_already_knows():
    weights = {"arith": 1.0, "facts": 1.0}
    assert _after_two_fine_tunes(ScoreNoise(weights, examples=10_000)) == ("m1", "arith")  # facts' +0.9 predicts +0.09 on m1
    assert _after_two_fine_tunes(ScoreNoise()) == ("m1", "facts")  # no weights known: the larger measured gain, as before


def test_an_untried_kind_with_evidence_against_it_comes_after_one_with_none_and_before_any_that_lost():
    assert untried(0.3, UNTRIED_BONUS) == pytest.approx(0.3 + UNTRIED_BONUS)
    assert 0 < untried(-2.0, UNTRIED_BONUS) < untried(-0.5, UNTRIED_BONUS) < untried(0.0, UNTRIED_BONUS) == UNTRIED_BONUS

    journal = journal_of([_scored("base", 0.5), _scored("a", 2.0), _scored("b", 1.0)])
    lost = _space(journal.models()).find("sft", {"model": "a", "dataset": "arith", "learning_rate": "0.003"})
    made(journal, lost, "m1", 0.2, 1)  # fine-tuning lost badly: every untried fine-tune's parts now predict a loss
    for seed in range(8):  # the merges have nothing against them: they come first, whatever the tie-breaking draw
        action = GreedyPolicy(seed=seed).select(_space(journal.models()), journal, 2).action
        assert action.type.name == "ties" and action.models[0].name == "a", (seed, str(action))
