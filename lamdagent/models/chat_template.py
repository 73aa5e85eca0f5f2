"""The study's chat-template setting: prompts wrapped as one user turn for instruct models.

Scores can shift with this setting, so it is fixed per study (`chat_template`) and applies alike to
training (TRL's conversational formats, which apply the template themselves) and to evaluation."""

from __future__ import annotations

from lamdagent.errors import UserError


def check_chat_template(tokenizer, model_dir) -> None:
    """A one-line UserError when a study asks for the chat template and the model has none."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(f"chat_template=true but the model at {str(model_dir)!r} has no chat template; set chat_template=false")


def chat_prompt(tokenizer, prompt: str) -> str:
    """`prompt` as the text of one user turn followed by the assistant's generation prompt."""
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def as_conversations(rows: list[dict]) -> list[dict]:
    """prompt/completion (SFT) or prompt/chosen/rejected (DPO) rows in TRL's conversational form."""
    converted = []
    for row in rows:
        turn = {"prompt": [{"role": "user", "content": row["prompt"]}]}
        for key in ("completion", "chosen", "rejected"):
            if key in row:
                turn[key] = [{"role": "assistant", "content": row[key].strip()}]
        converted.append(turn)
    return converted
