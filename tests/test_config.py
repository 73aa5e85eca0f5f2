import pytest

from lamdagent.config import flat_params, load_config, redacted, to_dict
from lamdagent.errors import UserError


def test_demo_loads_with_dotlist_overrides():
    cfg = load_config("demo", ["iterations=5", "agent.temperature=0", "sft.learning_rate=1e-4"])
    assert cfg.iterations == 5
    assert cfg.agent.temperature == 0
    assert cfg.sft.learning_rate == [1e-4]  # a single value is a fixed choice
    assert cfg.ties.weight == [0.5]


def test_list_of_hparam_choices():
    cfg = load_config("demo", ["ties.weight=[0.3,0.7]"])
    assert cfg.ties.weight == [0.3, 0.7]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["agent.temprature=0"], "unknown config key 'agent.temprature' (did you mean 'agent.temperature'?)"),
        (["iterations=abc"], "bad config value for 'iterations'"),
        (["iterations=-1"], "iterations must be >= 0"),
        (["tasks=[gsm9k]"], "unknown task 'gsm9k'"),
        (["ood_tasks=[gsm9k]"], "unknown task 'gsm9k'"),
        (["judge.backend=claude"], "judge.backend must be one of ['local', 'openai'], got 'claude'"),
        (["base_model=builtin:gpt5"], "unknown built-in model 'builtin:gpt5'"),
        (["datasets=[nope]"], "unknown dataset 'nope'"),
        (["actions=[sft,dpo2]"], "unknown action type 'dpo2'"),
        (["agent.policy=bayes"], "agent.policy must be one of ['greedy', 'guided', 'hybrid', 'llm', 'optuna', 'random'], got 'bayes'"),
        (["sft.learning_rate=[fast]"], "sft.learning_rate values must be numbers"),
        (["data.train_size=0"], "data.train_size must be > 0"),
        (["iterations"], "override 'iterations' is not key=value"),
        (["evaluation.batch_size=0"], "evaluation.batch_size must be a number > 0 or 'auto', got 0"),
        (["sft.epochs=0"], "sft.epochs must be a number > 0 or a list of them, got 0"),
        (["sft.epochs=[4,8,4.0]"], "sft.epochs lists 4 more than once: each choice once, got [4, 8, 4.0]"),
        (["sft.learning_rate=[1e-3,0.001]"], "sft.learning_rate lists 0.001 more than once"),
        (["dpo.batch_size=-2"], "dpo.batch_size must be > 0, got -2"),
        (["sft.lora.r=0"], "sft.lora.r must be > 0, got 0"),
        (["sft.lora.dropout=-0.1"], "sft.lora.dropout must be >= 0 and < 1, got -0.1"),
        (["ties.weight=[1.5]"], "ties.weight values must be >= 0 and <= 1, got 1.5"),
        (["ties.density=[0]"], "ties.density values must be > 0 and <= 1, got 0"),
        (["agent.on_endpoint_failure=retry"], "bad config value for 'agent.on_endpoint_failure': Invalid value 'retry', expected one of ['stop', 'random']"),
        (["evaluation.backend=tgi"], "expected one of ['hf', 'vllm']"),
        (["judge.max_retries=-1"], "judge.max_retries must be >= 0, got -1"),
        (["sft.lora.enabled=maybe"], "bad config value for 'sft.lora.enabled'"),
    ],
)
def test_bad_input_is_one_line_error(overrides, message):
    with pytest.raises(UserError) as err:
        load_config("demo", overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_study_lists_known_ones():
    with pytest.raises(UserError, match=r"unknown study 'nope'; expected one of \['demo'"):
        load_config("nope")


def test_round_trip_through_plain_dict_for_resume():
    cfg = load_config("demo", ["iterations=3", "ties.density=[0.3,0.6]"])
    again = load_config("", ["iterations=7"], base=to_dict(cfg))
    assert again.iterations == 7
    assert again.ties.density == [0.3, 0.6]


def test_redaction_hides_secret_values_but_keeps_variable_names():
    plain = {"agent": {"api_key": "sk-secret", "api_key_env": "OPENAI_API_KEY", "hf_token": "hf-secret", "memory_max_tokens": 96}, "name": "x"}
    safe = redacted(plain)
    assert safe["agent"]["api_key"] == "***"
    assert safe["agent"]["api_key_env"] == "OPENAI_API_KEY"
    assert safe["agent"]["hf_token"] == "***" and safe["agent"]["memory_max_tokens"] == 96
    assert "sk-secret" not in str(flat_params(safe))
    assert flat_params(safe)["agent.api_key_env"] == "OPENAI_API_KEY"


@pytest.mark.parametrize("overrides, seeds", [
    ([], ["all"]),  # the practitioner's default wherever the study offers `all` and fine-tunes
    (["datasets=[arith,facts]"], []),  # a study without `all` starts without it (and loads)
    (["actions=[ties]"], []),  # nor without sft
    (["seed_models=[arith]"], ["arith"]),  # what the user names
    (["seed_models=[]"], []),
])
def test_seed_models_default_to_ft_all_only_where_the_study_offers_all(overrides, seeds):
    assert load_config("mixed", overrides).seed_models == seeds


def test_seed_models_naming_data_the_study_does_not_offer_is_one_line():
    with pytest.raises(UserError, match="seed_models names 'all', which is not a dataset of this study"):
        load_config("mixed", ["datasets=[arith,facts]", "seed_models=[all]"])
