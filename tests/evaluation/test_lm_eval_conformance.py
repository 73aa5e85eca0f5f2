"""Numeric extraction equals lm-evaluation-harness's GSM8K filters (strict-match, flexible-extract:
configurations of our `regex` extractor) and metric (exact_match with regexes_to_ignore); choices take the last valid [[X]]; QA offers
TriviaQA's official normaliser; generations stop at the task's stop strings, as lm-eval cuts them."""

from __future__ import annotations

import importlib.util
import random

import pytest

from lamdagent.evaluation.extraction import LM_EVAL_GSM8K_FILTERS, Extraction, flexible_extract, strict_match
from lamdagent.evaluation.generation import cut_at_stop, generate_greedy
from lamdagent.evaluation.metrics import (
    bracket_choice,
    last_number,
    lm_eval_exact_match,
    number_match,
    triviaqa_exact_match,
)

UNTIL = ["Question:", "</s>", "<|im_end|>"]

# (generation, gold, flexible-extract answer, its reward, strict-match answer, its reward)
CASES = [
    (" She pays $5 for 3 pens. #### 15", "15", "15", 1.0, "15", 1.0),
    (" The answer is -$5.", "-5", "-$5.", 1.0, "[invalid]", 0.0),  # sign before the currency sign
    (" In total 1,000 apples.", "1000", "1,000", 1.0, "[invalid]", 0.0),  # thousands separators
    (" It costs 18.", "18", "18.", 1.0, "[invalid]", 0.0),  # a trailing period
    (" 5.50 dollars", "5.5", "5.50", 0.0, "[invalid]", 0.0),  # lm-eval does not drop trailing zeros
    (" #### 72\nQuestion: next one? Answer: 19", "72", "72", 1.0, "72", 1.0),  # cut at the stop string first
    (" no number here", "3", "[invalid]", 0.0, "[invalid]", 0.0),
    (" first 7 then 9", "9", "9", 1.0, "[invalid]", 0.0),
    (" #### -1,234.", "-1234", "-1,234.", 1.0, "-1,234.", 1.0),
    (" 3 + 4 = 7 so $7", "7", "$7", 1.0, "[invalid]", 0.0),
]


@pytest.mark.parametrize("generation, gold, flexible, flexible_reward, strict, strict_reward", CASES)
def test_our_extraction_and_metric_give_lm_evals_verdicts(generation, gold, flexible, flexible_reward, strict, strict_reward):
    text = cut_at_stop(generation, UNTIL)
    assert flexible_extract(text) == flexible and lm_eval_exact_match(flexible_extract(text), gold) == flexible_reward
    assert strict_match(text) == strict and lm_eval_exact_match(strict_match(text), gold) == strict_reward


def _generated_cases(n: int = 2000) -> list[tuple[str, str]]:
    """Generations mixing prose, signs, currency, separators, decimals, '####' and stop strings."""
    rng = random.Random(0)
    parts = ["The answer is", "so", "####", "$", "-", "Question:", "total", "\n", "=", "dollars", ".", ",", "</s>"]
    cases = []
    for _ in range(n):
        number = rng.choice([str(rng.randint(0, 9999)), f"{rng.randint(0, 999)}.{rng.randint(0, 99)}", f"{rng.randint(1, 99)},{rng.randint(100, 999)}"])
        words = [rng.choice(parts) for _ in range(rng.randint(0, 6))] + [rng.choice(["", "-", "$", "-$"]) + number] + \
                [rng.choice(parts) for _ in range(rng.randint(0, 4))]
        gold = rng.choice([number.replace(",", ""), str(rng.randint(0, 99)), "#### " + number])
        cases.append((" " + " ".join(words), gold))
    return cases


@pytest.mark.requires("lm_eval")
@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="lm-evaluation-harness is not installed (make install adds it)")
def test_agreement_with_lm_eval_itself_on_generated_cases():
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    strict_filter = RegexFilter(r"#### (\-?[0-9\.\,]+)")
    flexible_filter = RegexFilter(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1)
    ignore = [",", "\\$", "(?s).*#### ", "\\.$"]
    cases = [*((g, gold) for g, gold, *_ in CASES), *_generated_cases()]
    for generation, gold in cases:
        text = cut_at_stop(generation, UNTIL)
        for ours, theirs in ((flexible_extract, flexible_filter), (strict_match, strict_filter)):
            answer = theirs.apply([[text]], [{}])[0][0]
            assert ours(text) == answer, (generation, answer)
            reference = exact_match_hf_evaluate([answer], [gold], regexes_to_ignore=ignore, ignore_case=True)["exact_match"]
            assert lm_eval_exact_match(ours(text), gold) == reference, (generation, gold)


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="lm-evaluation-harness is not installed (make install adds it)")
def test_the_gsm8k_extractors_are_lm_evals_own_filter_lists_and_any_regex_filter_agrees():
    """Our two GSM8K extractors are gsm8k.yaml's filter_list as lm-eval ships it; other regex
    filters (first or last match, several groups, flags) give lm-eval's answers too."""
    from pathlib import Path

    import lm_eval
    import yaml
    from lm_eval.filters.extraction import RegexFilter

    shipped = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml").read_text())
    assert LM_EVAL_GSM8K_FILTERS == {entry["name"]: entry["filter"] for entry in shipped["filter_list"]}
    texts = [cut_at_stop(g, UNTIL) for g, _ in _generated_cases(500)] + ["The answer: 12\nANSWER: 7", "Answer: x", ""]
    cases = [(r"(\d+)\s*(dollars)?", 0, []), (r"answer:\s*(\w+)", -1, ["ignorecase"]), (r"^\s*(\w+)", -1, ["multiline"]),
             (r"[0-9]+", -1, []), (r"(-)?(\d+)|(\$)", 0, [])]
    for pattern, group_select, flags in cases:  # our flags are lm-eval's inline ones: (?i), (?m)
        theirs = RegexFilter("".join(f"(?{f[0]})" for f in flags) + pattern, group_select=group_select, fallback="none")
        ours = Extraction([{"function": "regex", "regex_pattern": pattern, "group_select": group_select, "flags": flags, "fallback": "none"},
                           {"function": "take_first"}])
        for text in texts:
            assert ours(text) == theirs.apply([[text]], [{}])[0][0], (pattern, text)


def test_last_number_keeps_the_sign_and_the_gold_is_normalised_alike():
    assert last_number("he owes -$5.") == "-5" and last_number("1,000.50 in total") == "1000.5"
    assert number_match("5", "5.0") == 1.0 and number_match("1000", "1,000") == 1.0 and number_match("-5", "5") == 0.0


@pytest.mark.parametrize("text, answer", [
    ("at first [[A]] looks right, but on reflection [[B]]", "B"),  # the last answer counts
    ("Answer with [[X]]: [[C]]", "C"),  # a letter that is no choice is no answer
    ("[[b]]", "B"),
    ("[[E]]", ""),  # not among this question's choices (A-D)
    ("no brackets", ""),
])
def test_choice_takes_the_last_valid_bracketed_letter(text, answer):
    assert bracket_choice(text, letters="ABCD") == answer


@pytest.mark.parametrize("prediction, gold, reward", [
    ("Jean Paul Sartre", "Jean-Paul Sartre", 1.0),
    ("O\u2019Neill", "O'Neill", 1.0),  # a typographic apostrophe
    ("the_beatles", "The Beatles", 1.0),
    ("Sartre", "Jean-Paul Sartre", 0.0),
])
def test_triviaqa_official_normaliser(prediction, gold, reward):
    assert triviaqa_exact_match(prediction, [gold, "another alias"]) == reward


def test_generation_stops_at_the_stop_strings_in_a_batch():
    from lamdagent.models.folders import load_model, resolve_base_model

    model, tokenizer = load_model(resolve_base_model("builtin:tiny-llama", 0))
    prompts = ["Question: 1 + 1?\nAnswer:", "Question: name a pen\nAnswer:", "Q"]
    free = generate_greedy(model, tokenizer, prompts, max_new_tokens=12, batch_size=2)
    stops = [text[len(text) // 2 : len(text) // 2 + 2] or "zz" for text in free]  # a string each free generation contains
    stopped = generate_greedy(model, tokenizer, prompts, max_new_tokens=12, batch_size=2, stop_strings=stops)
    assert stopped == [cut_at_stop(text, stops) for text in free]  # the same text, cut where lm-eval would cut it


def test_a_bad_extractor_option_is_a_one_line_error_at_load():
    from lamdagent.errors import UserError
    from lamdagent.evaluation.tasks import Task, TaskSpec

    with pytest.raises(UserError, match="extractor 'bracket_choice' has no option 'choices'; it takes \\['letters'\\]"):
        Task(TaskSpec(name="x", source="synthetic:choice", extractor="bracket_choice", extractor_args={"choices": "AB"}))
