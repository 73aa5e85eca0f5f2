"""The data screening: evidence about each candidate dataset before iterations are spent on it, logged
in MLflow (a run per dataset, a table on the exploration), reused across explorations, and read by
the policies as a prior (data predicted to hurt every target is not tried blind)."""

import dataclasses
import io
import json

import mlflow
import pytest
from rich.console import Console

from lamdagent.agent.facts import facts
from lamdagent.agent.search import GreedyPolicy, OptunaPolicy
from lamdagent.config import load_config
from lamdagent.console import Display
from lamdagent.exploration.loop import start_or_resume
from lamdagent.exploration.recorded import recorded_journal
from lamdagent.exploration.study import Study
from lamdagent.journal import Entry, Evidence
from lamdagent.screening import recorded_evidence
from lamdagent.space.objects import reseeded
from lamdagent.tracking import Kind, Record, Tracker
from tests.conftest import FAST
from tests.journals import journal_of
from tests.test_space import _model, _space

EFFECTS = {"arith": {"arith": 0.40, "facts": -0.05}, "facts": {"arith": -0.30, "facts": -0.20}}  # facts: harmful to both


def test_evidence_ranks_the_data_and_names_what_hurts_every_target():
    evidence = Evidence(EFFECTS)
    assert evidence.harmful("facts") and not evidence.harmful("arith") and not evidence.harmful("all")
    assert evidence.benefit("arith") == pytest.approx((1.0 - 0.25) / 2) and evidence.benefit("facts") == pytest.approx((-0.75 - 1.0) / 2)
    assert evidence.table().splitlines() == ["- arith: arith +0.400, facts -0.050", "- facts: arith -0.300, facts -0.200 (harmful to every target)"]


def test_repeated_screenings_count_only_the_effects_whose_repeats_agree_in_sign():
    evidence = Evidence.of_repeats({"arith": {"arith": [0.3, 0.5], "facts": [-0.1, 0.04]},  # facts: noise around zero
                                    "facts": {"arith": [-0.2, -0.4], "facts": [-0.1, -0.3]},
                                    "spelling": {"arith": [-0.2, -0.1], "facts": [0.2, -0.3]}})
    assert evidence.effects["arith"] == pytest.approx({"arith": 0.4, "facts": -0.03})
    assert evidence.clear("arith", "arith") and not evidence.clear("arith", "facts")
    assert evidence.harmful("facts") and not evidence.harmful("spelling")  # hurt every target in every repeat; unclear on facts
    assert evidence.benefit("arith") == pytest.approx((1.0 + 0.0) / 2)  # the unclear effect counts as none
    lines = evidence.table().splitlines()
    assert lines[0] == "- arith: arith +0.400, facts -0.030 (unclear: its 2 repeats disagree in sign)"
    assert lines[-1] == "- facts: arith -0.300, facts -0.200 (harmful to every target)"
    assert Evidence.of_repeats({"facts": {"arith": [-0.3], "facts": [-0.2]}}).harmful("facts")  # one repeat: a verdict, as before


@pytest.mark.parametrize("policy", [GreedyPolicy, OptunaPolicy])
def test_data_predicted_to_hurt_every_target_is_not_tried_blind(policy):
    models = [dataclasses.replace(_model(name), score=score) for name, score in (("base", 0.5), ("a", 2.0))]
    journal = journal_of(models)
    journal.evidence = Evidence(EFFECTS)
    space = _space(models)
    chosen = [policy(seed).select(space, journal, i).action for seed in range(3) for i in range(1, 5)]
    assert not [a for a in chosen if a.names().get("dataset") == "facts"]
    without = journal_of(models)  # the same decisions without the evidence do try it
    assert any(policy(seed).select(space, without, i).action.names().get("dataset") == "facts" for seed in range(3) for i in range(1, 5))


def test_greedy_tries_the_data_the_screening_ranks_first_before_other_untried_data():
    models = [dataclasses.replace(_model(name), score=score) for name, score in (("base", 0.5), ("a", 2.0))]
    journal = journal_of(models)
    journal.evidence = Evidence({"arith": {"arith": 0.1, "facts": 0.0}, "facts": {"arith": 0.2, "facts": 0.3}})
    proposals = GreedyPolicy(0).proposals(_space(models), journal, 1, limit=4)
    sft = [p for p in proposals if p.type.name == "sft"]
    assert sft[0].names()["dataset"] == "facts"


@pytest.mark.slow
@pytest.mark.ci
def test_the_screening_is_logged_reused_and_read_back(tracking_uri):
    world = [*FAST, "specialists=false", "seed_models=[]", "tasks=[arith,facts]", "datasets=[arith,facts]", "screening.enabled=true",
             "screening.val_size=8", "screening.repeats=2", "agent.policy=greedy", "iterations=1"]
    out = io.StringIO()
    with Display(Console(file=out, width=200)) as display:
        first, records, _ = start_or_resume("demo", world, None, Tracker(), display)
    screened = {r.name: r for r in records if r.kind == Kind.SCREENING}
    assert sorted(screened) == ["screen_arith", "screen_arith_1", "screen_facts", "screen_facts_1"]
    assert all(r.status == "ok" and r.compute_seconds > 0 and r.compute_flops > 0 for r in screened.values())
    assert set(screened["screen_arith"].screen) == {"arith", "facts"}
    assert screened["screen_arith"].screen != screened["screen_arith_1"].screen  # another sample, another order: another measurement
    table = json.loads(mlflow.artifacts.load_text(f"runs:/{first}/screening/evidence.json"))
    assert table["columns"] == ["dataset", "arith", "facts", "arith.min", "arith.max", "facts.min", "facts.max"]
    rows = {row[0]: dict(zip(table["columns"], row)) for row in table["data"]}
    repeats = [screened["screen_arith"].screen["facts"], screened["screen_arith_1"].screen["facts"]]
    assert rows["arith"]["facts"] == pytest.approx(sum(repeats) / 2) and rows["arith"]["facts.min"] == pytest.approx(min(repeats))
    assert "data screening (" in out.getvalue() and "2 repeats each" in out.getvalue()
    _, journal = recorded_journal(Tracker(), first, mlflow.get_run(first).info.experiment_id)  # read back as the replay reads it
    assert sorted(journal.evidence.effects) == sorted(rows)
    for dataset, row in rows.items():
        assert journal.evidence.effects[dataset] == pytest.approx({t: row[t] for t in ("arith", "facts")})
    assert journal.evidence.samples["arith"]["facts"] == pytest.approx(repeats)

    with Display(Console(file=io.StringIO())) as display:  # another exploration of the study: reused, not measured again
        second, again, _ = start_or_resume("demo", world, None, Tracker(), display)
    reused = {r.name: r for r in again if r.kind == Kind.SCREENING}
    assert {r.status for r in reused.values()} == {"cached"}
    assert {n: r.screen for n, r in reused.items()} == {n: r.screen for n, r in screened.items()}
    assert {n: r.compute_flops for n, r in reused.items()} == {n: r.compute_flops for n, r in screened.items()}  # what measuring it cost

    with Display(Console(file=io.StringIO())) as display:  # one repeat at train seed 1 is repeat 1 of train seed 0: the same run
        _, seed_1, _ = start_or_resume("demo", [*world, "screening.repeats=1", "train_seed=1"], None, Tracker(), display)
    reused = {r.name: r for r in seed_1 if r.kind == Kind.SCREENING}
    assert {r.status for r in reused.values()} == {"cached"}
    assert {n: r.screen for n, r in reused.items()} == {n: screened[f"{n}_1"].screen for n in ("screen_arith", "screen_facts")}


def test_a_full_fine_tune_on_the_data_overrules_the_screenings_prediction():
    """The screening predicts `facts` hurts every target, but the initial specialist, a full fine-tune
    of the base on `facts`, measured a large gain: greedy counts the measurement, not the prediction."""
    base, spec = (dataclasses.replace(_model(name), score=score) for name, score in (("base", 0.5), ("spec_facts", 2.0)))
    journal = journal_of([base, spec])
    journal.evidence = Evidence(EFFECTS)
    space = _space([base, spec])
    assert GreedyPolicy(0).select(space, journal, 1).action.names()["dataset"] != "facts"  # the prediction alone keeps it last
    assert journal.predicted_harmful("facts") and "hurt every target: facts" in facts(journal)
    specialist = next(a for a in space.actions("sft") if a.names() == {"model": "base", "dataset": "facts", "learning_rate": "0.001"})
    journal.initial_actions = [Entry(0, spec.run_id, "sft", specialist.names(), spec.fingerprint, "sft(base, facts)", [base], ["base"],
                                     status="ok", model=spec)]
    chosen = GreedyPolicy(0).select(space, journal, 1).action
    assert chosen.names() == {"model": "spec_facts", "dataset": "facts", "learning_rate": "0.001"}
    assert not journal.predicted_harmful("facts") and "hurt every target" not in facts(journal)  # nor told to the agent, nor refused to it
    assert any(OptunaPolicy(seed).select(space, journal, i).action.names().get("dataset") == "facts" for seed in range(3) for i in range(1, 5))


@pytest.mark.parametrize("study", ["uneven", "mixed"])
def test_a_repeat_draws_another_sample_and_the_first_is_the_searchs_own(study):
    """Repeat 0 screens the dataset the search trains on (its screening runs keep their fingerprints);
    repeat r the dataset drawn at train_seed + r, a mixture's parts included."""
    datasets = Study(load_config(study, ["train_seed=3"])).datasets
    assert [reseeded(d, 3).fingerprint for d in datasets] == [d.fingerprint for d in datasets]
    again = [reseeded(d, 4) for d in datasets]
    assert all(r.fingerprint != d.fingerprint for r, d in zip(again, datasets))
    arith = next(r for r, d in zip(again, datasets) if d.name == "arith")
    assert arith.rows() != next(d for d in datasets if d.name == "arith").rows()


def test_the_stability_analysis_reads_disjoint_groups_of_screenings_as_repeats():
    """analysis/screening_stability.py: seven screenings read one at a time and as two groups of three
    (the seventh left over): a sign that flips between screenings is a verdict alone, unclear in a group."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
    from screening_stability import markdown, read

    flips = [0.1, -0.2, 0.3, -0.1, -0.2, -0.3, 0.5]  # `facts` on facts; `spelling` hurts both targets every time
    screenings = [{"effects": {"facts": {"arith": -0.1, "facts": v}, "spelling": {"arith": -0.5, "facts": -0.4}}, "seconds": 10.0}
                  for v in flips]
    singles, groups = read(screenings, 3)
    assert len(singles) == 7 and len(groups) == 2
    assert [s["signs"]["facts"]["facts"] for s in singles] == ["+", "-", "+", "-", "-", "-", "+"]
    assert sum("facts" in s["harmful"] for s in singles) == 4 and [g["harmful"] for g in groups] == [["spelling"], ["facts", "spelling"]]
    assert [g["signs"]["facts"]["facts"] for g in groups] == ["?", "-"]
    table = markdown({"study": "w", "seeds": 7, "repeats": 3, "screenings": screenings, "singles": singles, "groups": groups,
                      "seconds_per_screening": 10.0})
    assert "| facts | 0/7/0 | 0/2/0 | 3/4/0 | 0/1/1 | 4 of 7 | 1 of 2 |" in table


def test_screenings_read_back_count_a_dataset_only_when_every_repeat_was_measured():
    def run(name, status, **screen):
        return Record(name, Kind.SCREENING, 0, name, status, screen=screen)

    records = [run("screen_arith", "ok", arith=0.2), run("screen_arith_1", "ok", arith=0.4),
               run("screen_facts", "ok", arith=-0.1), run("screen_facts_1", "failed"),  # `screen` tried facts blind
               run("screen_quiz", "ok", arith=0.1), run("screen_quiz_1", "failed"), run("screen_quiz_1", "ok", arith=0.3)]  # retried on resume
    evidence = recorded_evidence(records, ["arith", "facts", "quiz"], repeats=2)
    assert sorted(evidence.effects) == ["arith", "quiz"]
    assert evidence.effects["arith"]["arith"] == pytest.approx(0.3) and evidence.effects["quiz"]["arith"] == pytest.approx(0.2)


@pytest.mark.slow
def test_a_failed_screening_counts_what_it_spent_and_leaves_no_step_uncounted(tracking_uri):
    """A screening whose fine-tune fails for real (the loss overflows at a learning rate of 1e9) logs the
    seconds and operations it spent, as a failed action does; under budget.flops nothing is said missing."""
    world = [*(f for f in FAST if not f.startswith("sft.learning_rate")), "sft.learning_rate=[1e9]", "specialists=false", "seed_models=[]",
             "tasks=[arith]", "datasets=[arith]", "screening.enabled=true", "screening.val_size=8", "agent.policy=greedy", "iterations=1",
             "budget.flops=1e18"]
    out = io.StringIO()
    with Display(Console(file=out, width=300)) as display:
        run_id, records, _ = start_or_resume("demo", world, None, Tracker(), display)
    (screening,) = [r for r in records if r.kind == Kind.SCREENING]
    (action,) = [r for r in records if r.kind == Kind.ACTION]
    assert screening.status == action.status == "failed" and "NaN or infinite" in screening.error
    assert screening.compute_seconds > 0 and screening.compute_flops > 0 and action.compute_flops > 0
    _, journal = recorded_journal(Tracker(), run_id, mlflow.get_run(run_id).info.experiment_id)
    assert not journal.uncounted() and journal.spent_flops() == sum(r.compute_flops for r in records)
    assert "were counted" not in " ".join(out.getvalue().split())
