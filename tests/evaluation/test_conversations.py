"""Chat-conversation training data (ToolACE, Agent-FLAN, WizardLM shapes) as prompt/completion pairs."""

import json

import pytest

from lamdagent.actions import ACTION_TYPES
from lamdagent.config import load_config
from lamdagent.errors import UserError
from lamdagent.evaluation.sources.conversations import conversation_pair
from lamdagent.exploration.study import Study
from lamdagent.space import ConversationDatasetObject
from tests.helpers import base_model, context

TOOLACE = {"system": "You can call get_weather(city).", "conversations": [
    {"from": "user", "value": "Weather in Paris?"}, {"from": "assistant", "value": "[get_weather(city='Paris')]"},
    {"from": "tool", "value": "[{\"temp\": 21}]"}, {"from": "assistant", "value": "It is 21 degrees."}]}
AGENT_FLAN = {"id": "x", "conversation": [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Find a flight."},
                                          {"role": "assistant", "content": "Thought: search. Action: flights"}]}
WIZARD = {"idx": "1", "conversations": [{"from": "human", "value": "Write a haiku."}, {"from": "gpt", "value": "Autumn moon..."}]}


def test_the_last_assistant_turn_is_the_completion():
    pair = conversation_pair(TOOLACE)
    assert pair["prompt"].startswith("System: You can call get_weather(city).\nUser: Weather in Paris?\nAssistant: [get_weather")
    assert pair["prompt"].endswith("Tool: [{\"temp\": 21}]\nAssistant:") and pair["completion"] == " It is 21 degrees."
    assert conversation_pair(AGENT_FLAN) == {"prompt": "System: Use tools.\nUser: Find a flight.\nAssistant:",
                                             "completion": " Thought: search. Action: flights"}
    assert conversation_pair(WIZARD)["completion"] == " Autumn moon..."
    assert conversation_pair({"conversations": [{"from": "human", "value": "hi"}]}) is None


@pytest.fixture
def conversations_file(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in [TOOLACE, AGENT_FLAN, WIZARD] * 6))
    return path


def test_a_study_trains_on_conversation_data(conversations_file, tmp_path):
    cfg = load_config("demo", [f"training_data={{chats: {{source: 'json:{conversations_file}', size: 12}}}}", "datasets=[arith,chats]"])
    study = Study(cfg)
    chats = study.dataset("chats")
    assert isinstance(chats, ConversationDatasetObject) and len(chats.rows()) == 12
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(epochs=1))
    out = sft.run({"model": base_model(), "dataset": chats, "learning_rate": 1e-3}, context(tmp_path))
    assert out.metrics["train.steps"] == 1 and out.metrics["train.tokens"] > 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["training_data={x: {source: 'ftp:y'}}"], "training_data.x.source must be hf:<id> or json:<path>"),
        (["training_data={x: {source: 'json:/no/file.jsonl'}}"], "training_data.x: file '/no/file.jsonl' does not exist"),
        (["datasets=[chatz]"], "unknown dataset 'chatz'"),
    ],
)
def test_bad_training_data_is_a_one_line_error(overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config("demo", overrides)


def test_conversation_data_is_an_object_of_the_action_space(conversations_file):
    cfg = load_config("demo", [f"training_data={{chats: {{source: 'json:{conversations_file}', size: 12}}}}", "datasets=[chats]"])
    study = Study(cfg)
    action = study.space([base_model()]).find("sft", {"model": "base", "dataset": "chats", "learning_rate": "0.001"})
    assert action is not None and action.pipeline() == "sft(base, chats, learning_rate=0.001)"
    assert action.fingerprint != study.space([base_model()]).actions("sft")[1].fingerprint
