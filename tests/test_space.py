from lamdagent.actions import ACTION_TYPES
from lamdagent.space import ActionSpace, ModelObject
from tests.helpers import dataset


def _model(name: str, arch: str = "llama/64") -> ModelObject:
    return ModelObject(name, f"run-{name}", f"m-{name}", f"fp-{name}", name, arch)


def _space(models, lrs=(1e-3, 3e-3), weights=(0.3, 0.5, 0.7), done=frozenset()):
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(learning_rate=list(lrs)))
    ties = ACTION_TYPES["ties"](ACTION_TYPES["ties"].Settings(weight=list(weights), density=[0.5]))
    return ActionSpace([sft, ties], models, [dataset("arith"), dataset("facts")], done=done)


def test_enumerates_every_valid_binding():
    space = _space([_model("base"), _model("a"), _model("b")])
    assert len(space.actions("sft")) == 3 * 2 * 2  # models x datasets x learning rates
    ties = space.actions("ties")
    assert len(ties) == 3 * 2 * 3  # ordered pairs of distinct models x weights
    assert all(a.bindings["model_a"] is not a.bindings["model_b"] for a in ties)


def test_models_made_in_earlier_iterations_join_the_pool():
    models = [_model("base"), _model("a")]
    assert len(_space(models).actions("ties")) == 2 * 3
    models.append(_model("m1"))
    assert {a.names()["model"] for a in _space(models).actions("sft")} == {"base", "a", "m1"}


def test_incompatible_models_are_never_merge_candidates():
    space = _space([_model("base"), _model("a"), _model("other", arch="gemma/2304")])
    pairs = {(a.names()["model_a"], a.names()["model_b"]) for a in space.actions("ties")}
    assert pairs == {("base", "a"), ("a", "base")}
    assert "ties" not in _space([_model("base"), _model("other", arch="x")]).available_types()


def test_fingerprint_depends_on_inputs_data_and_hparams():
    space = _space([_model("base"), _model("a")])
    prints = [a.fingerprint for a in space.actions("sft")]
    assert len(set(prints)) == len(prints)
    again = _space([_model("base"), _model("a")]).actions("sft")
    assert [a.fingerprint for a in again] == prints


def test_find_and_pipeline_expression():
    base, a = _model("base"), _model("a")
    a.pipeline, a.iteration = "sft(base, arith)", 1  # made in iteration 1: written as its expression
    space = _space([base, a])
    action = space.find("ties", {"model_a": "a", "model_b": "base", "weight": "0.7", "density": "0.5"})
    assert action.pipeline() == "ties(sft(base, arith), base, weight=0.7)"  # a chosen hparam is written out
    assert space.find("sft", {"model": "a", "dataset": "facts", "learning_rate": "0.003"}).pipeline() == "sft(sft(base, arith), facts, learning_rate=0.003)"
    single = _space([base, a], lrs=(0.003,))
    assert single.find("sft", {"model": "a", "dataset": "facts", "learning_rate": "0.003"}).pipeline() == "sft(sft(base, arith), facts)"
    assert space.find("sft", {"model": "zzz", "dataset": "facts", "learning_rate": "0.003"}) is None


def test_actions_already_computed_are_not_offered_again():
    space = _space([_model("base"), _model("a")])
    first = space.actions("sft")[0]
    without = _space([_model("base"), _model("a")])
    without.done = {first.fingerprint}
    assert first.fingerprint not in {a.fingerprint for a in without.actions("sft")}
    assert len(without.actions("sft")) == len(space.actions("sft")) - 1


def test_a_type_stays_available_while_one_action_is_left_and_filters_keep_the_order():
    """What is done, blocked or a merge of a copy is left out; the rest keeps its order, and a type
    whose every action is left out is not available (filters set after construction, as tests and
    policies do, count too)."""
    models = [_model("base"), _model("a"), _model("b")]
    every = _space(models, weights=(0.3,)).actions("ties")  # one weight: no action is another's mirror
    space = _space(models, weights=(0.3,))
    space.done = {x.fingerprint for x in every[:-1]}
    assert space.available_types() == ["sft", "ties"] and [x.fingerprint for x in space.actions("ties")] == [every[-1].fingerprint]
    space.done = {x.fingerprint for x in every}
    assert space.available_types() == ["sft"]

    every = _space(models).actions("ties")
    space = _space(models)
    space.blocked = {(every[0].kind, "a")}  # ties at every[0]'s weight, on `a`: not with any partner
    space.copies = {"b": "base"}  # b copies base: no merge of the two
    kept = [x for x in every if not (x.kind == every[0].kind and "a" in x.names().values())
            and {x.names()["model_a"], x.names()["model_b"]} != {"base", "b"}]
    assert 0 < len(kept) < len(every) and [x.fingerprint for x in space.actions("ties")] == [x.fingerprint for x in kept]


def _sft(epochs, lrs=(1e-3,)):
    return ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(learning_rate=list(lrs), epochs=epochs))


def test_a_list_of_epochs_is_a_choice_whose_first_value_is_the_computation_of_a_study_that_fixes_it():
    from lamdagent.space import Action

    fixed, one, chosen = _sft(3), _sft([3]), _sft([3, 12])
    assert [s.name for s in fixed.slots] == [s.name for s in one.slots] == ["model", "dataset", "learning_rate"]
    assert [s.name for s in chosen.slots] == ["model", "dataset", "learning_rate", "epochs"]
    assert one.fixed_settings["epochs"] == fixed.fixed_settings["epochs"] == 3 and "epochs" not in chosen.fixed_settings
    base, data = _model("base"), dataset("arith")
    space = ActionSpace([chosen], [base], [data])
    three, twelve = sorted(space.actions("sft"), key=lambda a: a.bindings["epochs"])
    specialist = Action(fixed, {"model": base, "dataset": data, "learning_rate": 1e-3})
    # the default is the same computation as a study's fixed epochs (a specialist is not trained twice), the other is not
    assert three.fingerprint == specialist.fingerprint == Action(one, dict(specialist.bindings)).fingerprint != twelve.fingerprint
    assert twelve.pipeline() == "sft(base, arith, epochs=12)"  # the choice is written out, as a learning rate's
    # a record made before the choice (a specialist: no epochs named) is read as the default
    assert space.find("sft", {"model": "base", "dataset": "arith", "learning_rate": "0.001"}).fingerprint == three.fingerprint
    longer = twelve.with_settings({"epochs": 24})  # a grid trial fixes the epochs: no longer a binding
    assert "epochs" not in longer.bindings and longer.fingerprint == specialist.with_settings({"epochs": 24}).fingerprint


def test_bad_epochs_are_named_before_any_compute():
    import pytest

    from lamdagent.config import load_config
    from lamdagent.errors import UserError

    for value, message in (("[3,0]", "sft.epochs values must be > 0, got 0"), ("[3,x]", "sft.epochs values must be numbers, got 'x'"),
                           ("[]", "sft.epochs must list at least one value")):
        with pytest.raises(UserError, match=message.replace("[", r"\[")):
            load_config("mosaic", [f"sft.epochs={value}"])


def test_a_study_offering_epoch_choices_trains_its_specialists_and_grid_as_a_study_that_fixes_them():
    """Through the tool's own paths (the specialists' action, the full fine-tuning grid's settings):
    nothing is trained twice when a user adds a choice of epochs to a study."""
    from lamdagent.config import load_config
    from lamdagent.experiments.baselines import full_trial_action
    from lamdagent.exploration.seeds import sft_action
    from lamdagent.exploration.study import Study

    base = _model("base")
    fixed, chosen = Study(load_config("mosaic")), Study(load_config("mosaic", ["sft.epochs=[3,12]"]))
    for name in ("arith", "all"):
        assert sft_action(chosen, base, chosen.dataset(name)).fingerprint == sft_action(fixed, base, fixed.dataset(name)).fingerprint
    trials = [full_trial_action(s, base, s.all_data, 1e-3, 24.0) for s in (fixed, chosen)]
    assert trials[0].fingerprint == trials[1].fingerprint
    assert [s.name for s in trials[1].type.slots] == ["model", "dataset", "learning_rate"]
    assert trials[1].type.settings.epochs == 24.0 and trials[1].seed == chosen.train_seed


def test_a_merge_done_one_way_round_is_not_offered_the_other_way_round():
    models = [_model("base"), _model("a"), _model("b")]
    merge = next(a for a in _space(models).actions("ties") if [m.name for m in a.models] == ["a", "b"] and a.bindings["weight"] == 0.3)
    offered = [(tuple(m.name for m in a.models), a.bindings["weight"]) for a in _space(models, done={merge.fingerprint}).actions("ties")]
    assert (("a", "b"), 0.3) not in offered and (("b", "a"), 0.7) not in offered  # the same merge, either way round
    assert (("b", "a"), 0.3) in offered and (("a", "b"), 0.7) in offered and (("b", "a"), 0.5) in offered
    assert len(offered) == len(_space(models).actions("ties")) - 2


def test_the_actions_extending_some_models_are_the_full_lists_filtered_in_the_same_order():
    models = [_model("base"), _model("a"), _model("b"), _model("c")]
    space = _space(models, done={_space(models).actions("ties")[4].fingerprint})
    for name in ("sft", "ties"):
        for chosen in ([models[1]], [models[3], models[0]], []):
            assert space.actions(name, first_of=chosen) == [a for a in space.actions(name) if any(a.models[0] is m for m in chosen)]
    assert len(space.actions("ties", first_of=[models[1]])) == 3 * 3  # `a` with each other model x weights (the done one is base's)
