"""The study's chat-template setting, applied alike to training and evaluation."""

import shutil

import pytest
from transformers import AutoTokenizer

from lamdagent.actions import ACTION_TYPES, ActionContext
from lamdagent.errors import UserError
from lamdagent.evaluation.evaluator import evaluate
from lamdagent.evaluation.tasks import load_task
from lamdagent.models.chat_template import as_conversations, chat_prompt, check_chat_template
from lamdagent.models.folders import architecture, load_model
from lamdagent.space import ModelObject, fingerprint
from tests.helpers import base_model, dataset

TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}{% if m['role'] == 'assistant' %}</s>{% endif %}\n{% endfor %}"
            "{% if add_generation_prompt %}<s>assistant:{% endif %}")


@pytest.fixture
def chat_model(tmp_path):
    """The tiny base with a chat template added to its tokenizer."""
    folder = tmp_path / "chat-base"
    shutil.copytree(base_model().path, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    return ModelObject("base", "run-base", "m-base", fingerprint("chat-base"), "base", architecture(folder), path=folder)


def test_a_model_without_a_template_is_a_one_line_error():
    tokenizer = AutoTokenizer.from_pretrained(base_model().path)
    with pytest.raises(UserError, match="has no chat template; set chat_template=false"):
        check_chat_template(tokenizer, base_model().path)


def test_rows_become_one_user_and_one_assistant_turn():
    (sft,) = as_conversations([{"prompt": "Q: 1+1\nA:", "completion": " 2"}])
    assert sft == {"prompt": [{"role": "user", "content": "Q: 1+1\nA:"}], "completion": [{"role": "assistant", "content": "2"}]}
    (dpo,) = as_conversations([{"prompt": "p", "chosen": " a", "rejected": " b"}])
    assert dpo["chosen"][0]["content"] == "a" and dpo["rejected"][0]["content"] == "b"


def test_training_and_evaluation_use_the_template(chat_model, tmp_path):
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(epochs=1))
    ctx = ActionContext(tmp_path / "out", 0, chat_model.path, chat_template=True)
    out = sft.run({"model": chat_model, "dataset": dataset("arith", 16), "learning_rate": 3e-3}, ctx)
    assert out.metrics["train.steps"] > 0
    model, tokenizer = load_model(out.model_dir)
    assert tokenizer.chat_template == TEMPLATE  # the trained model keeps the template it was trained with
    result = evaluate(model, tokenizer, [load_task("arith")], "val", 3, chat_template=True)
    prompt = result.predictions["arith"][0]["prompt"]
    assert prompt.startswith("<s>user: Question:") and prompt.endswith("<s>assistant:")
    assert prompt == chat_prompt(tokenizer, load_task("arith").examples("val", 1)[0].prompt)
    plain = evaluate(model, tokenizer, [load_task("arith")], "val", 3)
    assert plain.predictions["arith"][0]["prompt"].startswith("Question:")
