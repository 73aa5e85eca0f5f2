"""Preference learning: Direct Preference Optimization through TRL's DPOTrainer."""

from __future__ import annotations

from dataclasses import dataclass, field

from lamdagent.actions.base import (
    ActionContext,
    ActionOutput,
    ActionType,
    Slot,
    check_positive,
    check_values,
    register_action,
)
from lamdagent.errors import ActionFailed
from lamdagent.training.spec import LoraSettings


@dataclass
class DPOSettings:
    beta: list = field(default_factory=lambda: [0.1])
    learning_rate: list = field(default_factory=lambda: [5e-4])
    epochs: float = 2.0
    batch_size: int = 16
    max_length: int = 256
    on_policy: bool = True  # rejected = the model's own wrong answer where it has one
    lora: LoraSettings = field(default_factory=LoraSettings)

    def check(self, prefix: str) -> None:
        check_values(self.beta, f"{prefix}.beta", low_open=True)
        check_values(self.learning_rate, f"{prefix}.learning_rate", low_open=True)
        check_positive(self, prefix, "epochs", "batch_size", "max_length")
        self.lora.check(f"{prefix}.lora")


def on_policy_pairs(rows: list[dict], model, tokenizer, tasks: dict, batch_size: int = 64, chat_template: bool = False) -> tuple[list[dict], int]:
    """Replace each task-built pair's rejected answer with the model's own greedy answer when that
    answer is wrong; returns (rows, how many were replaced)."""
    from lamdagent.evaluation.generation import generate_greedy
    from lamdagent.models.chat_template import chat_prompt

    built = [i for i, row in enumerate(rows) if "task" in row]
    if not built:
        return rows, 0
    replaced = 0
    for name, task in tasks.items():
        indices = [i for i in built if rows[i]["task"] == name]
        generations = generate_greedy(model, tokenizer, [chat_prompt(tokenizer, rows[i]["prompt"]) if chat_template else rows[i]["prompt"] for i in indices],
                                      max_new_tokens=task.spec.max_new_tokens, batch_size=batch_size, stop_strings=task.spec.until)
        for i, generation in zip(indices, generations):
            answer = generation.split("\n")[0].rstrip()
            if answer.strip() and task.score(answer, rows[i]["gold"])[1] == 0 and answer != rows[i]["chosen"]:
                rows[i] = {**rows[i], "rejected": answer}
                replaced += 1
    return rows, replaced


@register_action
class DPO(ActionType):
    name = "dpo"
    description = "preference learning (DPO): prefer correct answers over wrong ones"
    slots = (
        Slot("model", "model", "the model to train"),
        Slot("preference_dataset", "preference", "pairs of a chosen and a rejected answer"),
        Slot("beta", "hparam", "DPO temperature: how far the model may move from the reference"),
        Slot("learning_rate", "hparam", "peak learning rate"),
    )
    Settings = DPOSettings

    def run(self, bindings, ctx: ActionContext) -> ActionOutput:
        from lamdagent.training.trainer import launched, train, trainable_model

        s = self.settings
        model, tokenizer, adapter_base = trainable_model(ctx, bindings["model"], s.lora)
        preferences = bindings["preference_dataset"]
        rows = preferences.pairs()
        replaced = 0
        if s.on_policy:
            # launched training leaves the model on disk: load it here to generate
            generator, gen_tokenizer = ctx.load(bindings["model"]) if launched(ctx) else (model, tokenizer)
            rows, replaced = on_policy_pairs(rows, generator, gen_tokenizer, {t.name: t for t in preferences.tasks}, chat_template=ctx.chat_template)
            del generator
        rows = [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in rows if row["rejected"]]
        if not rows:
            raise ActionFailed(f"preference dataset {preferences.name!r} has no usable pairs")
        result = train(
            "dpo", ctx, model, tokenizer, rows,
            learning_rate=float(bindings["learning_rate"]), epochs=s.epochs, batch_size=s.batch_size, max_length=s.max_length,
            logged=("loss", "rewards/margins"), beta=float(bindings["beta"]),
        )
        return ActionOutput(
            model_dir=ctx.out_dir / "model",
            adapter_base=adapter_base,
            metrics={"train.loss": result.loss, "train.tokens": result.tokens, "train.steps": float(result.steps),
                     "train.pairs": float(len(rows)), "train.on_policy_pairs": float(replaced)},
            step_metrics={f"train.{k.replace('/', '_')}": v for k, v in result.series.items()},
        )
