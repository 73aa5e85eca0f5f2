"""The one registry type behind every plug-in point."""

import pytest

from lamdagent.errors import UserError
from lamdagent.registry import Registry


def test_a_registry_reads_like_a_dict_and_refuses_a_taken_name():
    things: Registry[int] = Registry("thing")
    things.register("b")(2)
    things.add("a", 1)
    assert dict(things) == {"b": 2, "a": 1} and things.names() == ["a", "b"] and "a" in things and "c" not in things
    assert things.get("c") is None and things.get("a") == 1 and len(things) == 2
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        things.add("a", 3)
    assert things["a"] == 1  # the first registration stands


def test_an_unknown_name_is_a_one_line_error_listing_the_valid_ones():
    things: Registry[int] = Registry("thing")
    things.add("a", 1)
    with pytest.raises(UserError, match=r"^unknown thing 'z'; expected one of \['a'\]$"):
        things["z"]
    with pytest.raises(UserError, match=r"^things.kind must be one of \['a'\], got 'z'$"):
        things.check("z", "things.kind")


@pytest.mark.parametrize("module, name, kind", [
    ("lamdagent.actions", "ACTION_TYPES", "action type"),
    ("lamdagent.evaluation.metrics", "METRICS", "metric"),
    ("lamdagent.evaluation.metrics", "EXTRACTORS", "extractor"),
    ("lamdagent.evaluation.sources", "SOURCES", "task source"),
    ("lamdagent.evaluation.sources.synthetic", "GENERATORS", "synthetic generator"),
    ("lamdagent.agent.policies", "POLICIES", "agent policy"),
    ("lamdagent.agent.llm", "CHAT_BACKENDS", "agent backend"),
    ("lamdagent.exploration.executors", "EXECUTORS", "executor"),
])
def test_every_plug_in_point_is_a_registry(module, name, kind):
    import importlib

    registry = getattr(importlib.import_module(module), name)
    assert isinstance(registry, Registry) and registry.kind == kind and len(registry) >= 2
    with pytest.raises(ValueError, match="already registered"):
        registry.add(registry.names()[0], object())
