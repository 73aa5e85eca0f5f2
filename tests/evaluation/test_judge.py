"""MT-Bench with an LLM judge behind a real local HTTP endpoint: ratings, retries, unparseable
judgements counted and never scored."""

import math

import pytest

from lamdagent.agent.llm import OpenAIChatModel
from lamdagent.evaluation.evaluator import evaluate
from lamdagent.evaluation.judge import Judge, mtbench_rows, parse_rating, set_judge
from lamdagent.evaluation.tasks import load_task
from lamdagent.models.folders import load_model, resolve_base_model


@pytest.fixture
def judge(fake_openai):
    judge = Judge(OpenAIChatModel("judge", api_key="sk-judge", base_url=fake_openai.base_url, max_retries=0), max_retries=1)
    set_judge(judge)
    yield judge
    set_judge(None)


def test_the_80_questions_ship_offline_with_references_where_the_judge_uses_them():
    rows = mtbench_rows()
    assert len(rows) == 80 and len({r["category"] for r in rows}) == 8
    assert all(bool(r["reference"]) == (r["category"] in ("math", "reasoning", "coding")) for r in rows)
    task = load_task("mt_bench")
    val, test = task.examples("val", 40), task.examples("test", 40)
    assert not {e.prompt for e in val} & {e.prompt for e in test}


@pytest.mark.parametrize("text, rating", [("Rating: [[8]]", 8.0), ("fine. [[7.5]]", 7.5), ("Rating: 8", None), ("[[11]]", None), ("", None)])
def test_parse_rating(text, rating):
    assert parse_rating(text) == rating


def test_judge_prompt_rating_and_retry(judge, fake_openai):
    fake_openai.script = ["I'd say eight.", "Rating: [[8]]"]
    task = load_task("mt_bench")
    math_case = next(e for e in task.examples("val", 40) if '"category": "math"' in e.gold)
    assert task.score("The answer is 4.", math_case.gold)[1] == pytest.approx(0.8)
    prompt = fake_openai.requests[-1]["messages"][1]["content"]
    assert "[The Start of Reference Answer]" in prompt and "The answer is 4." in prompt  # single-math-v1
    assert fake_openai.requests[-1]["messages"][0]["content"] == "You are a helpful assistant."
    assert judge.unparseable == 0


def test_unparseable_judgements_are_counted_not_scored(judge, fake_openai):
    """Three questions: the judge rates the first and the third, and never the second (asked twice)."""
    fake_openai.script = ["Rating: [[6]]", "no rating", "no rating", "Rating: [[10]]"]
    model, tokenizer = load_model(resolve_base_model("builtin:tiny-llama"))
    task = load_task("mt_bench")
    task.spec.max_new_tokens = 4
    result = evaluate(model, tokenizer, [task], "val", 3)
    rewards = [row["reward"] for row in result.predictions["mt_bench"]]
    assert rewards[0] == 0.6 and math.isnan(rewards[1]) and rewards[2] == 1.0
    assert result.scores["mt_bench"] == pytest.approx(0.8) and result.unscored["mt_bench"] == 1
    assert judge.unparseable == 1
