"""The shipped studies, and the embedded worlds' design as their YAML states it (docs/worlds.md):
what data each offers, in what proportion, and what the new data generators do."""

from __future__ import annotations

import re

import pytest

from lamdagent import files
from lamdagent.cli.main import main
from lamdagent.config import load_config
from lamdagent.evaluation.sources import synthetic
from lamdagent.evaluation.tasks import load_task
from lamdagent.exploration.overlap import overlaps
from lamdagent.exploration.study import Study

SHIPPED = sorted(path.stem for path in (files.CONF_DIR / "studies").glob("*.yaml"))
# offline, synthetic tasks, a built-in warm base
EMBEDDED_WORLDS = ["mixed", "redundant", "tradeoff", "distractors", "scarce", "lopsided", "narrow", "uneven", "mosaic", "relay", "ledger"]


def test_the_worlds_are_shipped():
    assert set(EMBEDDED_WORLDS) <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_study_loads_and_resolves(name):
    cfg = load_config(name)
    assert cfg.name == name
    study = Study(cfg)
    assert study.tasks and study.action_types and study.all_data.num_examples > 0


@pytest.mark.parametrize("name", EMBEDDED_WORLDS)
def test_an_embedded_world_dry_runs_offline_and_writes_nothing(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["explore", "--study", name, "--dry-run"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "- nothing: everything is local or built in" in out
    assert not list(tmp_path.iterdir())


def _stale(rows: list[dict]) -> int:
    """How many of `rows` answer a capital question with another capital than the knowledge base's."""
    facts = dict(synthetic._WORLD)
    return sum(1 for r in rows if (m := re.search(r"capital (?:city )?of (\w+)", r["prompt"])) and r["completion"].strip() != facts[m.group(1)])


def _sizes(name: str) -> dict[str, int]:
    return {d.name: d.num_examples for d in Study(load_config(name)).candidates}


def test_the_redundant_world_holds_as_much_harmful_data_as_clean_and_two_copies_of_arith():
    sizes = _sizes("redundant")
    clean = sizes["arith"] + sizes["arith_more"] + sizes["arith_alt"] + sizes["choice"] + sizes["facts"]
    harmful = sizes["arith_extra"] + sizes["choice_extra"] + sizes["facts_extra"]
    assert clean == harmful == 1000 and len(sizes) == 8  # 1:1, against `mixed`'s 3:1 over 7 datasets
    mixed = _sizes("mixed")
    assert mixed["arith_extra"] + mixed["choice_extra"] + mixed["facts_extra"] == 3 * (mixed["arith"] + mixed["choice"] + mixed["facts"])
    cfg = load_config("redundant")
    assert cfg.sft.epochs == 4 and cfg.actions == ["sft", "ties", "linear", "slerp"]


def test_the_tradeoff_world_has_two_targets_a_larger_base_and_a_harmful_minority():
    cfg = load_config("tradeoff")
    assert cfg.tasks == ["arith", "facts"] and cfg.base_model == "builtin:tiny-llama-large-warm"
    study = Study(cfg)
    rows = {d.name: d.rows() for d in study.candidates}
    wrong_facts = _stale(rows["facts_alt"] + rows["quiz"])
    wrong_sums = sum(1 for r in rows["quiz"] if "How many" in r["prompt"])  # every arithmetic row of the quiz is mislabelled
    wrong = wrong_facts + wrong_sums
    assert 0.1 < wrong / study.all_data.num_examples < 0.25, wrong  # 134 of 750: a minority


def test_the_distractors_world_has_two_off_target_datasets_and_about_two_wrong_labels_for_three_right():
    cfg = load_config("distractors")
    assert cfg.tasks == ["choice", "facts"] and cfg.actions == ["sft", "linear", "task_arithmetic"] and cfg.sft.learning_rate[0] == 3e-4
    study = Study(cfg)
    rows = {d.name: d.rows() for d in study.candidates}
    assert {"arith", "spelling"} <= set(rows)  # no target asks for them
    stale = _stale(rows["facts_alt"])
    wrong = len(rows["choice_extra"]) + len(rows["facts_extra"]) + stale
    right = len(rows["choice"]) + len(rows["facts"]) + len(rows["facts_alt"]) - stale
    assert 0.6 < wrong / right < 0.75, (wrong, right)


def test_the_scarce_world_has_few_clean_examples_and_about_three_wrong_labels_for_two_right():
    cfg = load_config("scarce")
    assert cfg.tasks == ["arith", "choice"] and cfg.actions == ["sft", "ties", "slerp"] and cfg.sft.epochs == 10
    rows = {d.name: d.rows() for d in Study(cfg).candidates}
    assert {len(rows[name]) for name in ("arith", "arith_alt", "choice")} == {80}
    wrong_sums = sum(1 for r in rows["quiz"] if "How many" in r["prompt"])  # every arithmetic row of the quiz is mislabelled
    wrong = len(rows["arith_extra"]) + len(rows["choice_extra"]) + wrong_sums
    right = len(rows["arith"]) + len(rows["arith_alt"]) + len(rows["choice"])
    assert 1.4 < wrong / right < 1.6, (wrong, right)


def test_the_lopsided_world_puts_every_wrong_label_on_facts_and_the_quiz():
    cfg = load_config("lopsided")
    assert cfg.tasks == ["arith", "choice", "facts"] and cfg.actions == ["sft", "linear", "dare_ties"] and cfg.sft.epochs == 7
    rows = {d.name: d.rows() for d in Study(cfg).candidates}
    assert _stale(rows["facts_extra"]) == len(rows["facts_extra"])
    wrong_sums = sum(1 for r in rows["quiz"] if "How many" in r["prompt"])
    wrong = len(rows["facts_extra"]) + wrong_sums
    right = sum(len(rows[name]) for name in ("arith", "arith_more", "choice", "facts")) + len(rows["quiz"]) - wrong_sums
    assert 0.75 < wrong / right < 0.85, (wrong, right)


def test_the_narrow_world_has_one_target_and_more_off_target_data_than_clean():
    cfg = load_config("narrow")
    assert cfg.tasks == ["arith"] and cfg.actions == ["sft", "slerp", "task_arithmetic"] and cfg.sft.learning_rate[0] == 3e-3
    study = Study(cfg)
    rows = {d.name: d.rows() for d in study.candidates}
    assert len(rows) == 9 and "all" in {d.name for d in study.datasets}
    wrong = len(rows["arith_extra"]) + sum(1 for r in rows["quiz"] if "How many" in r["prompt"])
    right = sum(len(rows[name]) for name in ("arith", "arith_more", "arith_alt"))
    off_target = sum(len(rows[name]) for name in ("choice", "facts", "facts_extra", "spelling"))
    assert right == 360 and 0.8 < wrong / right < 0.9 and off_target == 540, (wrong, right, off_target)


def test_the_uneven_world_has_more_arithmetic_than_facts_and_about_one_wrong_label_for_two_right():
    cfg = load_config("uneven")
    assert cfg.tasks == ["arith", "facts"] and cfg.actions == ["sft", "linear", "ties"] and cfg.base_model == "builtin:tiny-llama-warm"
    rows = {d.name: d.rows() for d in Study(cfg).candidates}
    assert len(rows) == 8 and len(rows["arith"]) + len(rows["arith_alt"]) == 280 and len(rows["facts"]) == 60
    stale = _stale(rows["facts_alt"])
    wrong = len(rows["arith_extra"]) + len(rows["facts_extra"]) + stale
    right = len(rows["arith"]) + len(rows["arith_alt"]) + len(rows["facts"]) + len(rows["facts_alt"]) - stale
    assert 0.45 < wrong / right < 0.6, (wrong, right)


def test_the_mosaic_world_puts_its_harm_on_choice_and_about_two_wrong_labels_for_three_right():
    cfg = load_config("mosaic")
    assert cfg.tasks == ["arith", "choice", "facts"] and cfg.actions == ["sft", "dare_ties", "slerp"] and cfg.sft.epochs == 3
    rows = {d.name: d.rows() for d in Study(cfg).candidates}
    assert len(rows) == 8 and len(rows["choice_extra"]) == 3 * len(rows["choice"]) and len(rows["arith_alt"]) == 2 * len(rows["arith"])
    stale = _stale(rows["facts_alt"])
    wrong_sums = sum(1 for r in rows["quiz"] if "How many" in r["prompt"])
    wrong = len(rows["choice_extra"]) + stale + wrong_sums
    right = sum(len(rows[name]) for name in ("arith", "arith_alt", "choice", "facts", "facts_alt", "quiz")) - stale - wrong_sums
    assert 0.6 < wrong / right < 0.7, (wrong, right)


def test_the_relay_world_puts_its_harm_on_facts_and_about_seven_wrong_labels_for_eight_right():
    cfg = load_config("relay")
    assert cfg.tasks == ["choice", "facts"] and cfg.actions == ["sft", "linear", "slerp"] and cfg.sft.epochs == 4
    rows = {d.name: d.rows() for d in Study(cfg).candidates}
    assert len(rows) == 8 and _stale(rows["facts_extra"]) == len(rows["facts_extra"]) == 200 and _stale(rows["facts"]) == 0
    stale = _stale(rows["facts_alt"])
    wrong = len(rows["choice_extra"]) + len(rows["facts_extra"]) + stale
    right = len(rows["choice"]) + len(rows["facts"]) + len(rows["facts_alt"]) - stale
    assert 0.8 < wrong / right < 0.95, (wrong, right)
    assert len(rows["arith"]) + len(rows["arith_more"]) == 250  # off-target only


def test_the_ledger_world_has_a_larger_validation_split_and_harm_on_every_target():
    cfg = load_config("ledger")
    assert cfg.tasks == ["arith", "choice", "facts"] and cfg.actions == ["sft", "ties", "task_arithmetic"] and cfg.sft.epochs == 6
    assert (cfg.data.val_size, cfg.data.test_size) == (80, 150)
    rows = {d.name: d.rows() for d in Study(cfg).candidates}
    assert len(rows) == 8 and _stale(rows["facts_extra"]) == len(rows["facts_extra"]) == 100 and _stale(rows["facts"]) == 0
    wrong = len(rows["arith_extra"]) + len(rows["choice_extra"]) + len(rows["facts_extra"])
    right = sum(len(rows[name]) for name in ("arith", "arith_more", "choice", "facts"))
    assert (wrong, right) == (300, 480) and len(rows["spelling"]) == 80  # `all`: the 860 together


@pytest.mark.parametrize("name", EMBEDDED_WORLDS)
def test_only_the_fixed_knowledge_base_and_arithmetics_small_space_overlap_evaluation(name):
    """The new data hold no target's validation or test prompt: only the facts (one fixed knowledge base,
    by design) and the few arithmetic prompts a draw from `arith`'s own generator repeats."""
    study = Study(load_config(name))
    for dataset, held in overlaps(study).items():
        for where, n in held.items():
            task, split = where.split("/")
            if task == "arith":
                assert dataset in ("arith", "arith_extra", "quiz", "all") and n <= 0.1 * getattr(study.cfg.data, f"{split}_size"), (dataset, held)
            else:
                assert task == "facts", (dataset, held)
    for copy in ("arith_more", "arith_alt"):
        assert copy not in overlaps(Study(load_config("redundant")))


def _numbers(question: str) -> tuple[int, int]:
    a, b = (int(n) for n in re.findall(r"\d+", question)[:2])
    return a, b


def _pattern(template: str) -> re.Pattern:
    """A question template as a regular expression over any name, item and numbers."""
    escaped = re.escape(template).replace(r"\{name\}", r"(\w+)").replace(r"\{item\}", r"(\w+)")
    return re.compile(escaped.replace(r"\{a\}", r"(\d+)").replace(r"\{b\}", r"(\d+)") + "$")


def test_the_redundant_copies_of_arith_are_correct_and_share_no_prompt_with_it():
    arith = synthetic.generate("arithmetic", "train", 2000, 0)
    more = synthetic.generate("arithmetic_more", "train", 300, 0)
    worded = synthetic.generate("arithmetic_worded", "train", 300, 0)
    arith_wording = [_pattern(synthetic._GAIN), _pattern(synthetic._LOSS)]
    for row in more + worded:
        a, b = _numbers(row["question"])
        assert int(row["answer"]) == (a + b if re.search(r"more|in total", row["question"]) else a - b), row
    assert not {r["question"] for r in more + worded} & {r["question"] for r in arith}
    assert all(any(p.match(r["question"]) for p in arith_wording) for r in arith + more)  # the near-duplicate: arith's wording
    assert not any(p.match(r["question"]) for p in arith_wording for r in worded)  # the paraphrase: none of it


def test_the_partly_updated_edition_is_wrong_for_one_country_in_three():
    truth = dict(synthetic._WORLD)
    answers = {}
    for row in synthetic.generate("facts_partial", "train", 600, 0):
        country = re.search(r"of (\w+)", row["question"]).group(1)
        answers[country] = row["answer"]
    wrong = [c for c in answers if answers[c] != truth[c]]
    assert len(answers) == 30 and len(wrong) == 10


def test_the_quiz_bundle_holds_true_facts_and_mislabelled_arithmetic():
    truth = dict(synthetic._WORLD)
    rows = synthetic.generate("quiz", "train", 400, 0)
    facts = [r for r in rows if "capital" in r["question"]]
    sums = [r for r in rows if "How many" in r["question"]]
    assert len(facts) + len(sums) == 400 and 150 < len(facts) < 250
    assert all(r["answer"] == truth[re.search(r"of (\w+)", r["question"]).group(1)] for r in facts)
    for row in sums:
        a, b = _numbers(row["question"])
        correct = a + b if "more" in row["question"] else a - b
        assert int(row["answer"]) != correct or 0 in (a, b)
    task = load_task("quiz")
    assert [e.target for e in task.examples("train", 3)] == [f" {r['answer']}" for r in synthetic.generate("quiz", "train", 3, 0)]
