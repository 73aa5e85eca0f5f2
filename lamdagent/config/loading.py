"""Loading a study config: the study's YAML merged over the schema, then dotlist overrides,
validated before any compute; and the plain, redacted forms logged to MLflow."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from lamdagent.actions import ACTION_TYPES
from lamdagent.config.schema import study_config
from lamdagent.config.validation import validate
from lamdagent.errors import UserError
from lamdagent.files import conf_files, load_yaml
from lamdagent.plugins import load_included

SECRET_KEY = re.compile(r"(api_?key|(^|_)token|secret|password)$", re.IGNORECASE)

DEFAULT_STUDY = "mixed"  # what `mlflow run .` and a command without --study run: the world of uneven data

def study_names() -> list[str]:
    return sorted(conf_files("studies"))


def _known_keys(node, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items_ex(resolve=False) if hasattr(node, "items_ex") else node.items():
        full = f"{prefix}{key}"
        keys.append(full)
        if OmegaConf.is_dict(value):
            keys.extend(_known_keys(value, full + "."))
    return keys


def _one_line(err: OmegaConfBaseException, schema) -> UserError:
    key = getattr(err, "full_key", None) or ""
    if isinstance(err, ConfigKeyError) and key:
        close = difflib.get_close_matches(key, _known_keys(schema), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return UserError(f"unknown config key {key!r}{hint}")
    message = str(err).splitlines()[0]
    return UserError(f"bad config value for {key!r}: {message}" if key else f"bad config: {message}")


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def load_config(study: str, overrides: list[str] | None = None, base: dict | None = None) -> Any:
    """The validated study config. `study` is a name in conf/studies/ or a YAML path; `base` is
    a resolved config to start from instead (used when resuming an exploration)."""
    load_included()  # a user's own action types (their config sections), metrics, ...: in a Ray worker too
    schema = OmegaConf.structured(study_config())
    layers = []
    if base is not None:
        layers.append(base)
    else:
        path = Path(study) if study.endswith((".yaml", ".yml")) else conf_files("studies").get(study, Path(f"{study}.yaml"))
        if not path.exists():
            raise UserError(f"unknown study {study!r}; expected one of {study_names()} or a path to a study YAML file")
        layers.append(load_yaml(path))
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"override {item!r} is not key=value")
    try:
        layers.append(OmegaConf.from_dotlist(list(overrides or [])))
    except yaml.YAMLError as err:
        raise UserError(f"overrides {' '.join(overrides or [])!r} are not valid YAML values: {str(err).splitlines()[0]}") from None
    try:
        for layer in layers:
            for key in list(layer.keys()) if OmegaConf.is_dict(layer) else layer:
                section = layer[key] if OmegaConf.is_dict(layer) else None
                if key in ACTION_TYPES and OmegaConf.is_dict(section):  # a scalar choice means [scalar]
                    hparams = {s.name for s in ACTION_TYPES[key].slots if s.kind == "hparam"}
                    for slot in hparams & set(section.keys()):
                        section[slot] = _as_list(OmegaConf.to_container(section, resolve=True)[slot])
        merged = OmegaConf.merge(schema, *layers)
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise _one_line(err, schema) from None
    if config.seed_models is None:
        offers_all = "sft" in config.actions and (not config.datasets or "all" in config.datasets)
        config.seed_models = ["all"] if offers_all else []
    validate(config)
    return config


def to_dict(cfg) -> dict:
    """Plain, resolved config."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


def redacted(value: Any) -> Any:
    """The config with any secret-looking key's value replaced (keys that *name* a variable stay)."""
    if isinstance(value, dict):
        return {
            k: ("***" if SECRET_KEY.search(k) and v else redacted(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def flat_params(value: Any, prefix: str = "") -> dict[str, str]:
    """`a.b.c -> str(value)` pairs for MLflow params."""
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            out.update(flat_params(sub, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): str(value)}
