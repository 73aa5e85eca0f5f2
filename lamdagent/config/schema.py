"""The study config's schema: omegaconf structured dataclasses, one section per registered action type.

A study is `conf/studies/<name>.yaml` merged over this schema, then command-line overrides (an
omegaconf dotlist such as `iterations=5 agent.temperature=0 sft.learning_rate=1e-4`). Each
registered action type contributes a section (`sft`, `ties`, ...) from its `Settings`.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lamdagent.actions import ACTION_TYPES
from lamdagent.errors import require


def _at_least(section: Any, prefix: str, low: float, *names: str, strict: bool = False) -> None:
    """Each named field of `section` is >= low (> low when `strict`)."""
    for name in names:
        value = getattr(section, name)
        require(value > low if strict else value >= low, f"{prefix}.{name} must be {'>' if strict else '>='} {low:g}, got {value}")


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
    # stop: every step of a decision failing at the endpoint stops the exploration | random: fall back to random choices
    on_endpoint_failure: Literal["stop", "random"] = "stop"
    request_retries: int = 3  # retries of a timed-out, refused, 429 or 5xx request, with bounded backoff
    memory_max_tokens: int = 96
    structured_output: bool = True  # send a JSON schema (response_format) to the endpoint
    trace: bool = True  # MLflow traces of the agent's and the judge's LLM calls, linked to the action runs (docs/tracking.md)

    def check(self) -> None:
        _at_least(self, "agent", 0, "temperature", "max_retries", "request_retries")
        _at_least(self, "agent", 0, "memory_max_tokens", "request_timeout", strict=True)


@dataclass
class JudgeConfig:
    """The LLM judge of judged tasks (MT-Bench): any OpenAI-compatible endpoint."""

    backend: str = "openai"  # openai | local (offline SmolLM2-135M-Instruct: runs, but judges poorly)
    model: str = "gpt-4o"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_retries: int = 2  # re-asks after an unparseable judgement, which is then counted, not scored

    def check(self) -> None:
        _at_least(self, "judge", 0, "max_retries")


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

    def check(self) -> None:
        _at_least(self, "data", 0, "train_size", "val_size", "test_size", strict=True)
        for name, value in self.train_sizes.items():
            require(value > 0, f"data.train_sizes.{name} must be > 0, got {value}")


@dataclass
class EvaluationConfig:
    batch_size: Any = 64  # a number, or auto: by the free memory (GPU or RAM)
    backend: Literal["hf", "vllm"] = "hf"  # hf (batched transformers generate) | vllm (needs vLLM and a GPU; imported only then)

    def check(self) -> None:
        batch = self.batch_size
        require(batch == "auto" or (isinstance(batch, int) and not isinstance(batch, bool) and batch > 0),
                f"evaluation.batch_size must be a number > 0 or 'auto', got {batch!r}")
        require(self.backend != "vllm" or _installed("vllm"),
                "evaluation.backend=vllm needs vLLM: pip install vllm (a CUDA machine), or use evaluation.backend=hf")


@dataclass
class LeaseConfig:
    """One process at a time runs an exploration (see lamdagent/lease.py)."""

    timeout_seconds: float = 300.0  # a lease without a heartbeat for this long is stale
    heartbeat_seconds: float = 30.0

    def check(self) -> None:
        require(0 < self.heartbeat_seconds < self.timeout_seconds, "lease.heartbeat_seconds must be > 0 and < lease.timeout_seconds, "
                f"got {self.heartbeat_seconds} and {self.timeout_seconds}")


@dataclass
class TrackingConfig:
    """The tracking server as a real server (docs/tracking-server.md): how long an exploration
    waits out its outage (a restart, its database down), retrying with backoff, before it stops."""

    max_outage_seconds: float = 600.0

    def check(self) -> None:
        require(self.max_outage_seconds > 0, f"tracking.max_outage_seconds must be > 0 (seconds), got {self.max_outage_seconds}")


@dataclass
class RetentionConfig:
    """Disk: at the end of an exploration, keep the weights of the top-k models of the study and
    their lineage, free the rest (metrics, tags, predictions and memory are always kept)."""

    keep_top_k: int | None = None  # None: keep every model's weights

    def check(self) -> None:
        require(self.keep_top_k is None or self.keep_top_k >= 1, f"retention.keep_top_k must be >= 1 or null, got {self.keep_top_k}")


@dataclass
class ScreeningConfig:
    """Evidence about the candidate data before iterations are spent on it (lamdagent/screening/): per
    dataset, a short fine-tune of the base on a sample at the smallest learning rate and the loss change
    on each target's validation answers."""

    enabled: bool = True
    fraction: float = 0.5  # of each dataset's examples
    epochs: float = 2.0  # over that sample: one pass over half of each dataset
    val_size: int = 32  # validation answers per task whose loss is measured (at most data.val_size)
    repeats: int = 1  # short fine-tunes per dataset, each on another sample in another order; with 2 or more, an
    # effect whose repeats disagree in sign is unclear and no verdict

    def check(self) -> None:
        require(0 < self.fraction <= 1, f"screening.fraction must be > 0 and <= 1, got {self.fraction}")
        _at_least(self, "screening", 0, "epochs", "val_size", "repeats", strict=True)


@dataclass
class BudgetConfig:
    """The exploration's compute budget, beside its `iterations`: it stops once this much compute was
    spent (the initial models, the screening, training, merging and evaluation counted; a model reused
    from the cache counts what making it took)."""

    seconds: float | None = None  # wall seconds (other work on the machine inflates them); None: not this limit
    flops: float | None = None  # floating-point operations (models/flops.py: the same on a busy machine); None: not this limit

    def check(self) -> None:
        require(self.seconds is None or self.seconds > 0, f"budget.seconds must be > 0 or null, got {self.seconds}")
        require(self.flops is None or self.flops > 0, f"budget.flops must be > 0 or null, got {self.flops}")


@dataclass
class ExecutionConfig:
    """Where and how many actions run at once (docs/scaling.md)."""

    parallel: int = 1  # k: actions the policy proposes per round; 1 is the paper's behaviour
    executor: str = "local"  # local (this process, one after another) | ray (one Ray task per action)
    ray_address: str | None = None  # None: ray.init() starts a local cluster; "auto" or ray://host:10001 joins one
    num_cpus: float = 1.0  # resources one action's Ray task declares
    num_gpus: float = 0.0
    memory_gb: float | None = None

    def check(self) -> None:
        """The executor's name is a plug-in of the exploration layer, checked there (EXECUTORS) before any run starts."""
        require(self.parallel >= 1, f"execution.parallel must be >= 1, got {self.parallel}")
        require(self.num_cpus > 0 and self.num_gpus >= 0 and (self.memory_gb is None or self.memory_gb > 0),
                f"execution resources must be positive, got num_cpus={self.num_cpus}, num_gpus={self.num_gpus}, memory_gb={self.memory_gb}")
        require(self.executor != "ray" or _installed("ray"), "execution.executor=ray needs Ray: pip install 'lamdagent[cluster]' (or ray)")


@dataclass
class LaunchConfig:
    """How SFT and DPO train: in this process, or through `accelerate launch` (multi-GPU; docs/multi-gpu.md)."""

    launcher: Literal["inprocess", "accelerate"] = "inprocess"
    accelerate_config: str | None = None  # an accelerate config file (DDP, FSDP, DeepSpeed), passed through
    num_processes: int = 1
    args: list[str] = field(default_factory=list)  # more `accelerate launch` arguments, passed through

    def check(self) -> None:
        require(self.num_processes >= 1, f"training.num_processes must be >= 1, got {self.num_processes}")
        require(not self.accelerate_config or Path(self.accelerate_config).expanduser().exists(),
                f"training.accelerate_config: file {self.accelerate_config!r} does not exist")


@dataclass
class _StudyBase:
    name: str = "demo"
    iterations: int = 10  # total iterations of the exploration (resume continues up to this)
    seed: int = 0  # the world: evaluation splits, the base, the specialists (and w_t)
    train_seed: int | None = None  # the search's training randomness: data sampling and order, new modules' init; None: seed
    base_model: str = "builtin:tiny-llama"  # builtin:tiny-llama | local folder | hub id
    tasks: list[str] = field(default_factory=lambda: ["arith", "choice", "facts"])
    ood_tasks: list[str] = field(default_factory=list)  # out-of-distribution tasks, evaluated in the final report only
    chat_template: bool = False  # wrap prompts in the model's chat template (instruct models), in training and evaluation
    task_weights: dict[str, float] = field(default_factory=dict)  # default w_t = 1 / max seed r_t
    datasets: list[str] = field(default_factory=list)  # training data objects; default: each task + all
    training_data: dict[str, TrainingDataConfig] = field(default_factory=dict)  # more datasets, by name
    preference_datasets: list[str] = field(default_factory=list)  # for dpo: task names, all, json:<path>, hf:<id>
    specialists: bool = True  # train one specialist per task from the base as initial objects
    # the practitioner's defaults as initial objects too: the base fine-tuned on each named dataset at the default
    # settings (ft_<dataset>); None: ["all"] when the study fine-tunes and offers `all`, else none
    seed_models: list[str] | None = None
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
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)
    training: LaunchConfig = field(default_factory=LaunchConfig)



def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def study_config() -> type:
    """The study dataclass: the fixed fields plus one section per action type registered now (a
    user's own, imported by --include, included)."""
    return _schema(tuple(sorted(ACTION_TYPES)))


@functools.lru_cache(maxsize=None)
def _schema(action_types: tuple[str, ...]) -> type:
    sections = [(name, ACTION_TYPES[name].Settings, field(default_factory=ACTION_TYPES[name].Settings)) for name in action_types]
    return dataclasses.make_dataclass("StudyConfig", sections, bases=(_StudyBase,))
