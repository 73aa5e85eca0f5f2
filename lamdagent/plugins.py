"""A user's own plug-ins (metrics, extractors, action types, policies: whatever a registry holds),
loaded without editing the package, as lm-eval's `--include_path`.

`--include MODULE_OR_PATH` (any command, repeatable) or $LAMDAGENT_INCLUDE (entries separated by
the path separator) names a module importable from sys.path, a .py file or a folder of .py files;
importing it runs its registrations (`METRICS.register`, `EXTRACTORS.register`, `register_action`,
...). `--include` imports at once and adds the entry to $LAMDAGENT_INCLUDE, so every process this
one starts inherits it. Each process imports $LAMDAGENT_INCLUDE's entries at its entry: the command
line, `load_config` (where a Ray worker rebuilds the study) and the `accelerate launch` worker.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from lamdagent.errors import UserError

INCLUDE_ENV = "LAMDAGENT_INCLUDE"
_imported: set[str] = set()  # entries imported (or being imported) in this process
_loaded = ""  # the value of $LAMDAGENT_INCLUDE whose entries are all imported


def include(entry: str) -> None:
    """Import `entry` (a module name, a .py file or a folder) now and list it in $LAMDAGENT_INCLUDE
    for the processes this one starts; a missing module or path is a one-line UserError."""
    entry = _resolved(entry)
    if entry not in _imported:
        _import(entry)
    listed = [_resolved(e) for e in _listed()]
    if entry not in listed:
        os.environ[INCLUDE_ENV] = os.pathsep.join([*_listed(), entry])


def load_included() -> None:
    """Import every entry of $LAMDAGENT_INCLUDE this process has not imported yet (cheap when nothing changed)."""
    global _loaded
    value = os.environ.get(INCLUDE_ENV, "")
    if value == _loaded:
        return
    for entry in _listed():
        entry = _resolved(entry)
        if entry not in _imported:
            _import(entry)
    _loaded = value


def _listed() -> list[str]:
    return [e for e in os.environ.get(INCLUDE_ENV, "").split(os.pathsep) if e]


def _resolved(entry: str) -> str:
    """An absolute path for a file or folder (the same in a process started elsewhere), else the
    module name. A path: ends in .py, holds a separator, or exists and is no importable module."""
    if entry.endswith(".py") or "/" in entry or os.sep in entry:
        return str(Path(entry).expanduser().resolve())
    try:
        found = importlib.util.find_spec(entry) is not None
    except (ImportError, ValueError):
        found = False
    return entry if found or not Path(entry).exists() else str(Path(entry).resolve())


def _import(entry: str) -> None:
    _imported.add(entry)  # first: a plug-in that reads a registry while it is imported does not import itself again
    try:
        path = Path(entry)
        if not path.is_absolute():
            _import_module(entry)
        elif path.is_dir():
            for file in sorted(path.glob("*.py")):
                _import_file(file)
        elif path.is_file() and path.suffix == ".py":
            _import_file(path)
        else:
            raise UserError(f"--include {entry!r} is neither a .py file nor a folder; expected a module on sys.path, a .py file or "
                            "a folder of .py files")
    except BaseException:
        _imported.discard(entry)
        raise


def _import_module(name: str) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and (name == err.name or name.startswith(err.name + ".")):  # the entry itself, not an import inside it
            raise UserError(f"--include {name!r}: no module named {err.name!r} on sys.path; expected a module name, a .py file or a folder") from None
        raise


def _import_file(path: Path) -> None:
    """Import a .py file under a name made from its path (the same in every process)."""
    path = path.resolve()
    name = f"lamdagent_include_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
