"""Action types; importing this package registers the built-in ones."""

from lamdagent.actions import dpo, merge, sft  # noqa: F401  (registration)
from lamdagent.actions.base import (
    ACTION_TYPES,
    ActionContext,
    ActionOutput,
    ActionType,
    Slot,
    register_action,
)

__all__ = ["ACTION_TYPES", "ActionContext", "ActionOutput", "ActionType", "Slot", "register_action"]
