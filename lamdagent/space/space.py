"""Actions (an action type with every slot bound) and the space of all valid ones."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lamdagent.actions import ActionType
from lamdagent.space.objects import TRAINING_DATA, DatasetObject, ModelObject, PreferenceDatasetObject, fingerprint

OBJECTS = (ModelObject, *TRAINING_DATA)


def _label(value: Any) -> str:
    """How an object or value is named to the agent and in expressions."""
    if isinstance(value, OBJECTS):
        return value.name
    return f"{value:g}" if isinstance(value, float) else str(value)


def with_defaults(action_type: ActionType, names: dict[str, str]) -> dict[str, str]:
    """A record's bound names with each setting slot it leaves out (made before the study offered a
    choice of it, or by a fixed-setting type: a specialist, a grid trial) at the type's default."""
    return {**{slot: _label(value) for slot, value in action_type.defaults().items()}, **names}


def kind_of(type_name: str, names: dict[str, str], model_names: set[str]) -> tuple:
    """What kind of action this is, apart from the models it takes: its type and its other bindings
    (data, hyperparameters), e.g. ("sft", (("dataset", "all"), ("learning_rate", "0.001")))."""
    return type_name, tuple((slot, name) for slot, name in names.items() if name not in model_names)


@dataclass
class Action:
    type: ActionType
    bindings: dict[str, Any]  # slot name -> ModelObject | DatasetObject | hparam value
    seed: int = 0

    @property
    def models(self) -> list[ModelObject]:
        return [v for v in self.bindings.values() if isinstance(v, ModelObject)]

    @functools.cached_property
    def fingerprint(self) -> str:
        """Type, inputs' fingerprints, data and its size, hyperparameters, settings and seed."""
        settings = dict(self.type.fixed_settings)
        identity = {}
        for slot, value in self.bindings.items():
            if slot in self.type.setting_slots:  # the same computation whether the study fixes it or offers a choice
                settings[slot] = value
            else:
                identity[slot] = value.fingerprint if isinstance(value, OBJECTS) else value
        return fingerprint(self.type.name, identity, settings, self.seed)

    def with_settings(self, overrides: dict[str, Any]) -> Action:
        """This action under its type's settings with `overrides` (e.g. a grid trial's epochs)."""
        if not overrides:
            return self
        action_type = type(self.type)(dataclasses.replace(self.type.settings, **overrides))
        slots = {s.name for s in action_type.slots}  # a setting fixed now is no longer bound
        return Action(action_type, {k: v for k, v in self.bindings.items() if k in slots}, self.seed)

    @property
    def kind(self) -> tuple:
        return kind_of(self.type.name, self.names(), {m.name for m in self.models})

    @property
    def hparams(self) -> dict[str, Any]:
        return {s.name: self.bindings[s.name] for s in self.type.slots if s.kind == "hparam"}

    def names(self) -> dict[str, str]:
        """Slot -> the name of the bound object or value (the agent's vocabulary)."""
        return {slot: _label(value) for slot, value in self.bindings.items()}

    def pipeline(self) -> str:
        """The expression of the model this action makes, e.g. `sft(ties(spec_a, spec_b), all)`:
        initial models by name, hyperparameters the study offers a choice of written out."""
        args = [value.pipeline if isinstance(value, ModelObject) and value.iteration > 0 else value.name
                for value in self.bindings.values() if isinstance(value, OBJECTS)]
        choices = self.type.hparam_choices()
        args += [f"{slot}={_label(value)}" for slot, value in self.hparams.items() if len(choices[slot]) > 1]
        return f"{self.type.name}({', '.join(args)})"

    def __str__(self) -> str:
        return f"{self.type.name}({', '.join(f'{k}={v}' for k, v in self.names().items())})"


class ActionSpace:
    """Every valid action over the current objects: models (seeds + produced), datasets, hparams."""

    def __init__(
        self,
        action_types: list[ActionType],
        models: list[ModelObject],
        datasets: list[DatasetObject],
        seed: int = 0,
        done: set[str] = frozenset(),
        preference_datasets: list[PreferenceDatasetObject] = (),
        blocked: set[tuple[tuple, str]] = frozenset(),
        copies: dict[str, str] | None = None,
    ):
        """`done`: fingerprints of actions already computed, which are not offered again (nor their
        mirrors: a merge of the same two models the other way round, at the mirrored share). `blocked`:
        (kind, model name) pairs: that kind of action is not offered on that model (it made the model
        and gained nothing, so it would gain nothing again). `copies`: model name -> the model it
        copies by every target's score (made with no gain from it); a merge of two models that copy
        the same one is not offered (it gives that model's scores again)."""
        self.action_types = {t.name: t for t in action_types}
        self.models = models
        self.datasets = datasets
        self.preference_datasets = list(preference_datasets)
        self.seed = seed
        self.done = done
        self.blocked = blocked
        self.copies = copies or {}

    def candidates(self, type_name: str) -> dict[str, list[Any]]:
        """Slot -> the objects or values it may take."""
        action_type = self.action_types[type_name]
        choices = action_type.hparam_choices()
        by_kind = {"model": self.models, "dataset": self.datasets, "preference": self.preference_datasets}
        return {s.name: by_kind[s.kind] if s.kind != "hparam" else choices[s.name] for s in action_type.slots}

    def choice_slots(self, type_name: str) -> list[str]:
        """The slots the agent chooses: all but hyperparameters with a single (fixed) value."""
        slots = self.action_types[type_name].slots
        return [s.name for s in slots if s.kind != "hparam" or len(self.candidates(type_name)[s.name]) > 1]

    def actions(self, type_name: str, first_of: list[ModelObject] | None = None) -> list[Action]:
        """All valid actions of one type (a model is never bound to two slots of one action), in the
        same order; with `first_of` only those whose first model is one of these (the same objects)."""
        return list(self._valid(type_name, first_of))

    def _valid(self, type_name: str, first_of: list[ModelObject] | None = None) -> Iterator[Action]:
        action_type = self.action_types[type_name]
        slots = self.candidates(type_name)
        model_slots = [s.name for s in action_type.slots if s.kind == "model"]
        if first_of is not None:
            if not model_slots:
                return
            chosen = {id(m) for m in first_of}
            slots = {**slots, model_slots[0]: [m for m in slots[model_slots[0]] if id(m) in chosen]}
        blocked_models = {name for _, name in self.blocked}
        for values in itertools.product(*slots.values()):
            bindings = dict(zip(slots, values))
            picked = [id(bindings[s]) for s in model_slots]
            if len(set(picked)) < len(picked):
                continue
            if action_type.accepts(bindings):
                action = Action(action_type, bindings, self.seed)
                if action.fingerprint not in self.done and not self._mirrors_done(action) and not self._repeats_nothing_new(action, blocked_models):
                    yield action

    def _mirrors_done(self, action: Action) -> bool:
        """Whether other bindings that compute the same model were done (ActionType.mirror)."""
        mirror = action.type.mirror(action.bindings)
        return mirror is not None and Action(action.type, mirror, self.seed).fingerprint in self.done

    def _repeats_nothing_new(self, action: Action, blocked_models: set[str]) -> bool:
        """A blocked kind on one of its models (`blocked_models`: the models some kind is blocked on),
        or a merge of a model with its own copy."""
        models = action.models
        if any(m.name in blocked_models for m in models) and any((action.kind, m.name) in self.blocked for m in models):
            return True
        originals = [self.copies.get(m.name, m.name) for m in models]
        return len(set(originals)) < len(originals)

    def available_types(self) -> list[str]:
        """Action types with at least one valid action (a merge needs two compatible models)."""
        return [name for name in self.action_types if next(self._valid(name), None) is not None]

    def find(self, type_name: str, names: dict[str, str]) -> Action | None:
        """The action whose bound names equal `names` (the agent's reply, a record), or None; a setting
        slot `names` leaves out (a record made before the study offered a choice of it) is its default."""
        names = with_defaults(self.action_types[type_name], names)
        for action in self.actions(type_name):
            if action.names() == names:
                return action
        return None
