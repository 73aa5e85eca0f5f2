"""Answer extractors and metrics, each one registered function (lm-eval style registries)."""

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


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


@register_extractor("last_number")
def last_number(text: str) -> str:
    """The last number in the text, commas removed (GSM8K's final-answer convention)."""
    numbers = _NUMBER.findall(text)
    if not numbers:
        return ""
    value = numbers[-1].replace(",", "").rstrip(".")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value


_BRACKET_CHOICE = re.compile(r"\[\[\s*([A-Za-z])\s*\]\]")


@register_extractor("bracket_choice")
def bracket_choice(text: str) -> str:
    """The letter in the first `[[X]]` (the paper's CommonsenseQA answer format)."""
    match = _BRACKET_CHOICE.search(text)
    return match.group(1).upper() if match else ""


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
    """SQuAD/TriviaQA normalisation: lower case, no punctuation, no articles, single spaces."""
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
