"""Answer extractors and metrics, each one registered function (lm-eval style registries); the
`regex` extractor and lm-eval's GSM8K filters are in `extraction`."""

from __future__ import annotations

import re
import string
from typing import Callable

from lamdagent.registry import Registry

Extractor = Callable[[str], str]
Metric = Callable[[str, "str | list[str]"], float]

EXTRACTORS: Registry[Extractor] = Registry("extractor")
METRICS: Registry[Metric] = Registry("metric")


def register_extractor(name: str):
    """Register `fn(generation) -> answer string` under `name`."""
    return EXTRACTORS.register(name)


def register_metric(name: str):
    """Register `fn(prediction, gold) -> float in [0, 1]` under `name`; gold may list aliases."""
    return METRICS.register(name)


_NUMBER = re.compile(r"(-?)\$?(\d[\d,]*(?:\.\d+)?)")


def _canonical_number(text: str) -> str:
    """A number as written, without thousands separators or trailing zeros after the point."""
    value = text.replace(",", "").rstrip(".")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value


@register_extractor("last_number")
def last_number(text: str) -> str:
    """The last number in the text (its sign kept, also before a currency sign: `-$5` is -5),
    canonical: no thousands separators, no trailing zeros. Scored with `number_match`, which
    canonicalises the gold alike."""
    numbers = _NUMBER.findall(text)
    if not numbers:
        return ""
    sign, digits = numbers[-1]
    return sign + _canonical_number(digits)


_BRACKET_CHOICE = re.compile(r"\[\[\s*([A-Za-z])\s*\]\]")


@register_extractor("bracket_choice")
def bracket_choice(text: str, letters: str = "ABCDE") -> str:
    """The letter of the last `[[X]]` whose letter is one of the question's choices `letters`
    (a reply may reason over several before it answers; `[[X]]` in an instruction is no answer)."""
    valid = [m.upper() for m in _BRACKET_CHOICE.findall(text) if m.upper() in letters.upper()]
    return valid[-1] if valid else ""


@register_extractor("first_line")
def first_line(text: str) -> str:
    """The first non-empty line: short-answer QA stops at the first newline."""
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


@register_extractor("full_text")
def full_text(text: str) -> str:
    """The whole generation, stripped (for judged, open-ended answers)."""
    return text.strip()


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation (its official evaluate-v1.1.py; NQ-open's evaluation uses it too):
    lower case, punctuation removed, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _aliases(gold: str | list[str]) -> list[str]:
    return [gold] if isinstance(gold, str) else list(gold)


@register_metric("exact_match")
def exact_match(prediction: str, gold: str | list[str]) -> float:
    """1.0 when the prediction equals one of the gold strings exactly."""
    return float(any(prediction.strip() == g.strip() for g in _aliases(gold)))


@register_metric("normalized_exact_match")
def normalized_exact_match(prediction: str, gold: str | list[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold alias (TriviaQA)."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in _aliases(gold)))


@register_metric("number_match")
def number_match(prediction: str, gold: str | list[str]) -> float:
    """1.0 when the extracted number equals a gold number, both canonical (sign, no thousands
    separators, no trailing zeros): `5.0` and `5`, `1,000` and `1000` match."""
    return float(any(prediction.strip() == last_number(g) for g in _aliases(gold)))


# lm-eval's exact_match as GSM8K configures it (metric_list: ignore_case, regexes_to_ignore)
LM_EVAL_GSM8K_IGNORE = (",", "\\$", "(?s).*#### ", "\\.$")


@register_metric("lm_eval_exact_match")
def lm_eval_exact_match(prediction: str, gold: str | list[str], regexes_to_ignore=LM_EVAL_GSM8K_IGNORE, ignore_case: bool = True,
                        ignore_punctuation: bool = False) -> float:
    """lm-eval's `exact_match_hf_evaluate` on one prediction: each regex of `regexes_to_ignore`
    removed from prediction and gold, then case (and punctuation) ignored as configured."""

    def clean(text: str) -> str:
        for pattern in regexes_to_ignore:
            text = re.sub(pattern, "", text)
        if ignore_case:
            text = text.lower()
        if ignore_punctuation:
            text = text.translate(str.maketrans("", "", string.punctuation))
        return text

    return float(any(clean(prediction) == clean(g) for g in _aliases(gold)))


_TRIVIA_PUNCTUATION = set(string.punctuation + "\u2018\u2019\u00b4`")


def triviaqa_normalize(text: str) -> str:
    """TriviaQA's official normaliser (triviaqa_evaluation.py, `normalize_answer`): underscores
    and punctuation, typographic quotes included, become spaces; lower case; no articles."""
    text = text.replace("_", " ").lower()
    text = "".join(" " if ch in _TRIVIA_PUNCTUATION else ch for ch in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split()).strip()


@register_metric("triviaqa_exact_match")
def triviaqa_exact_match(prediction: str, gold: str | list[str]) -> float:
    """TriviaQA's official exact match: the normalised prediction equals a normalised alias."""
    pred = triviaqa_normalize(prediction)
    return float(any(pred == triviaqa_normalize(g) for g in _aliases(gold)))
