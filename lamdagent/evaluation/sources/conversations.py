"""Training data that is not a target task: chat conversations (ShareGPT / OpenAI-messages style,
as in ToolACE, Agent-FLAN and WizardLM evol-instruct) turned into prompt/completion pairs: the
conversation up to its last assistant turn is the prompt, that turn the completion."""

from __future__ import annotations

from pathlib import Path

from lamdagent.errors import UserError

ROLES = {"human": "User", "user": "User", "gpt": "Assistant", "assistant": "Assistant", "system": "System",
         "tool": "Tool", "function": "Tool", "observation": "Tool"}


def _turns(row: dict) -> list[tuple[str, str]]:
    turns = row.get("conversations") or row.get("conversation") or row.get("messages") or []
    pairs = [(ROLES.get(str(t.get("from") or t.get("role")).lower(), "User"), str(t.get("value") or t.get("content") or "")) for t in turns]
    if row.get("system"):
        pairs.insert(0, ("System", str(row["system"])))
    return pairs


def conversation_pair(row: dict) -> dict[str, str] | None:
    """{"prompt", "completion"} from one conversation, or None without an assistant turn."""
    turns = _turns(row)
    last = max((i for i, (role, _) in enumerate(turns) if role == "Assistant"), default=None)
    if last is None:
        return None
    history = "".join(f"{role}: {text}\n" for role, text in turns[:last])
    return {"prompt": f"{history}Assistant:", "completion": f" {turns[last][1]}"}


def load_conversations(source: str, size: int, subset: str | None = None) -> list[dict[str, str]]:
    """Up to `size` prompt/completion pairs from `hf:<id>` (optionally a data file `subset`) or `json:<path>`."""
    import datasets

    kind, _, ref = source.partition(":")
    if kind == "json":
        path = Path(ref).expanduser()
        if not path.exists():
            raise UserError(f"training data file {str(path)!r} does not exist")
        data = datasets.load_dataset("json", data_files=str(path), split="train")
    elif kind == "hf":
        data = datasets.load_dataset(ref, data_files=subset, split="train") if subset else datasets.load_dataset(ref, split="train")
    else:
        raise UserError(f"training data source {source!r} is not hf:<id> or json:<path>")
    pairs = []
    for row in data:
        pair = conversation_pair(dict(row))
        if pair:
            pairs.append(pair)
        if len(pairs) == size:
            break
    return pairs
