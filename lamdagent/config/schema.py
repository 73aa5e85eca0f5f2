"""The study config's schema: omegaconf structured dataclasses, one section per registered action type.

A study is `conf/studies/<name>.yaml` merged over this schema, then command-line overrides (an
omegaconf dotlist such as `iterations=5 agent.temperature=0 sft.learning_rate=1e-4`). Each
registered action type contributes a section (`sft`, `ties`, ...) from its `Settings`.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from lamdagent.actions import ACTION_TYPES


@dataclass
class AgentConfig:
    policy: str = "llm"  # a registered policy: llm | guided | random | greedy | optuna
    seed: int | None = None  # the policy's own randomness; None: the study's seed (the world stays the same either way)
    backend: str = "local"  # local (offline SmolLM2) | openai (any OpenAI-compatible endpoint)
    model: str = "SmolLM2-135M-Instruct"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never stored
    temperature: float = 0.7
    max_retries: int = 2  # re-asks after an invalid reply, before the logged random fallback
    request_timeout: float = 300.0  # seconds per request: a small model on a busy CPU takes minutes for a long prompt
    on_endpoint_failure: str = "stop"  # stop: every step of a decision failing at the endpoint stops the exploration | random: fall back to random choices
    request_retries: int = 3  # retries of a timed-out, refused, 429 or 5xx request, with bounded backoff
    memory_max_tokens: int = 96
    structured_output: bool = True  # send a JSON schema (response_format) to the endpoint
    trace: bool = True  # MLflow traces of the agent's and the judge's LLM calls, linked to the action runs (docs/tracking.md)


@dataclass
class JudgeConfig:
    """The LLM judge of judged tasks (MT-Bench): any OpenAI-compatible endpoint."""

    backend: str = "openai"  # openai | local (offline SmolLM2-135M-Instruct: runs, but judges poorly)
    model: str = "gpt-4o"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_retries: int = 2  # re-asks after an unparseable judgement, which is then counted, not scored


@dataclass
class TrainingDataConfig:
    """A training dataset that is not a target task: chat conversations from the hub or a file."""

    source: str = ""  # hf:<dataset id> or json:<path>
    subset: str | None = None  # a data file within the hub dataset
    size: int = 1000


@dataclass
class DataConfig:
    train_size: int = 400  # training examples per task
    train_sizes: dict[str, int] = field(default_factory=dict)  # a candidate dataset of another size, by name (a small clean set, a big noisy one)
    val_size: int = 50
    test_size: int = 100


@dataclass
class EvaluationConfig:
    batch_size: Any = 64  # a number, or auto: by the free memory (GPU or RAM)
    backend: str = "hf"  # hf (batched transformers generate) | vllm (needs vLLM and a GPU; imported only then)


@dataclass
class LeaseConfig:
    """One process at a time runs an exploration (see lamdagent/lease.py)."""

    timeout_seconds: float = 300.0  # a lease without a heartbeat for this long is stale
    heartbeat_seconds: float = 30.0


@dataclass
class TrackingConfig:
    """The tracking server as a real server (docs/tracking-server.md): how long an exploration
    waits out its outage (a restart, its database down), retrying with backoff, before it stops."""

    max_outage_seconds: float = 600.0


@dataclass
class RetentionConfig:
    """Disk: at the end of an exploration, keep the weights of the top-k models of the study and
    their lineage, free the rest (metrics, tags, predictions and memory are always kept)."""

    keep_top_k: int | None = None  # None: keep every model's weights


@dataclass
class ExecutionConfig:
    """Where and how many actions run at once (docs/scaling.md)."""

    parallel: int = 1  # k: actions the policy proposes per round; 1 is the paper's behaviour
    executor: str = "local"  # local (this process, one after another) | ray (one Ray task per action)
    ray_address: str | None = None  # None: ray.init() starts a local cluster; "auto" or ray://host:10001 joins one
    num_cpus: float = 1.0  # resources one action's Ray task declares
    num_gpus: float = 0.0
    memory_gb: float | None = None


@dataclass
class LaunchConfig:
    """How SFT and DPO train: in this process, or through `accelerate launch` (multi-GPU; docs/multi-gpu.md)."""

    launcher: str = "inprocess"  # inprocess | accelerate
    accelerate_config: str | None = None  # an accelerate config file (DDP, FSDP, DeepSpeed), passed through
    num_processes: int = 1
    args: list[str] = field(default_factory=list)  # more `accelerate launch` arguments, passed through


@dataclass
class _StudyBase:
    name: str = "demo"
    iterations: int = 10  # total iterations of the exploration (resume continues up to this)
    seed: int = 0
    base_model: str = "builtin:tiny-llama"  # builtin:tiny-llama | local folder | hub id
    tasks: list[str] = field(default_factory=lambda: ["arith", "choice", "facts"])
    ood_tasks: list[str] = field(default_factory=list)  # out-of-distribution tasks, evaluated in the final report only
    chat_template: bool = False  # wrap prompts in the model's chat template (instruct models), in training and evaluation
    task_weights: dict[str, float] = field(default_factory=dict)  # default w_t = 1 / max seed r_t
    datasets: list[str] = field(default_factory=list)  # training data objects; default: each task + all
    training_data: dict[str, TrainingDataConfig] = field(default_factory=dict)  # more datasets, by name
    preference_datasets: list[str] = field(default_factory=list)  # for dpo: task names, all, json:<path>, hf:<id>
    specialists: bool = True  # train one specialist per task from the base as initial objects
    actions: list[str] = field(default_factory=lambda: ["sft", "ties"])
    repeat_actions: bool = False  # offer actions this exploration already computed (reused from cache)
    max_consecutive_failures: int = 5  # stop the exploration cleanly after this many failed actions
    agent: AgentConfig = field(default_factory=AgentConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    registered_model: str = ""  # Model Registry name; default lamdagent-<name>
    lease: LeaseConfig = field(default_factory=LeaseConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    training: LaunchConfig = field(default_factory=LaunchConfig)



def study_config() -> type:
    """The study dataclass: the fixed fields plus one section per action type registered now (a
    user's own, imported by --include, included)."""
    return _schema(tuple(sorted(ACTION_TYPES)))


@functools.lru_cache(maxsize=None)
def _schema(action_types: tuple[str, ...]) -> type:
    sections = [(name, ACTION_TYPES[name].Settings, field(default_factory=ACTION_TYPES[name].Settings)) for name in action_types]
    return dataclasses.make_dataclass("StudyConfig", sections, bases=(_StudyBase,))
