"""The real benchmarks' task definitions (conf/tasks/hub/), checked offline on rows shaped like the
hub data: the training target scores 1 under the task's own extractor and metric, a wrong answer 0."""

import dataclasses
import json

import pytest

from lamdagent.evaluation.tasks import Task, load_task

ROWS = {
    "gsm8k": {"question": "Tom has 3 apples and buys 1,200 more. How many?", "answer": "3 + 1200 = 1203\n#### 1,203"},
    "gsm_symbolic": {"question": "Ann has 5 pens and loses 2. How many?", "answer": "5 - 2 = 3\n#### 3"},
    "commonsense_qa": {"question": "Where do fish live?", "answerKey": "C",
                       "choices": {"label": ["A", "B", "C", "D", "E"], "text": ["tree", "desert", "water", "sky", "car"]}},
    "social_iqa": {"context": "Kai gave Sam a gift.", "question": "How would Sam feel?", "answerA": "sad",
                   "answerB": "grateful", "answerC": "angry", "label": "2"},
    "trivia_qa": {"question": "Which planet is the Red Planet?", "answer": {"value": "Mars", "aliases": ["Mars", "Planet Mars"]}},
    "natural_questions": {"question": "who wrote hamlet", "answer": ["William Shakespeare", "Shakespeare"]},
    # LILA's schema for NumGLUE: input, output_program, output_answer (a string), split, dataset
    "numglue_type1": {"input": "A bag holds 1,250 g of flour and 750 g more are added. How many grams now?",
                      "output_program": "answer = 1250 + 750\nprint(answer)", "output_answer": "2,000", "split": "validation",
                      "dataset": "NumGLUE_Type_1_crowdsourced"},
    "numglue_type2": {"input": "How many moles of NaCl form from 3 moles of HCl and 3 moles of NaOH?",
                      "output_program": "answer = 3\nprint(answer)", "output_answer": "3", "split": "validation",
                      "dataset": "NumGLUE_Type_2_crowdsourced"},
}
WRONG = {"gsm8k": " 1,204", "gsm_symbolic": " 4", "commonsense_qa": " [[A]]", "social_iqa": " [[C]]",
         "trivia_qa": " Venus", "natural_questions": " Marlowe", "numglue_type1": " 2,001", "numglue_type2": " 6"}


def _offline(name: str, tmp_path) -> Task:
    """The hub task with its source swapped for local files holding one fixture row per split."""
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.jsonl").write_text(json.dumps(ROWS[name]))
    task = load_task(name)
    return Task(dataclasses.replace(task.spec, source=f"json:{tmp_path}/{{split}}.jsonl"))


@pytest.mark.parametrize("name", sorted(ROWS))
def test_hub_task_target_scores_one_and_a_wrong_answer_zero(name, tmp_path):
    task = _offline(name, tmp_path)
    (example,) = task.examples("val", 1)
    assert task.score(example.target, example.gold)[1] == 1.0
    assert task.score(WRONG[name], example.gold)[1] == 0.0
    assert example.prompt.rstrip().endswith("Answer:")


def test_rendered_prompts_follow_the_paper_formats(tmp_path):
    gsm_dir = tmp_path / "gsm"
    gsm_dir.mkdir()
    (gsm,) = _offline("gsm8k", gsm_dir).examples("train", 1)
    assert gsm.gold == "1203"  # the number after '####', commas dropped
    (csqa,) = _offline("commonsense_qa", tmp_path).examples("train", 1)
    assert "(C) water\n" in csqa.prompt and "[[X]]" in csqa.prompt and csqa.target == " [[C]]"
    assert load_task("trivia_qa").spec.hf_config == "rc.nocontext"
    assert load_task("gsm8k").spec.hf_splits["val"] == "test[:100]"  # validation from another split
