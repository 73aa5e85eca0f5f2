"""A model folder's content digest: what its files hold, not what the model is called.

The base model's digest is part of the root of every lineage's fingerprint, so a tracking store that
two machines share never reuses a model trained from other weights under the same name (a built-in
warm base is pre-trained on each machine, and a hub name or a local folder can change what it holds).
Hashing reads every byte once per folder state; the digest is kept in the cache keyed by the files'
names, sizes and modification times, so later processes only stat the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from lamdagent.files import cache_dir

IGNORED = ("readme", "license", "notice", ".gitattributes")  # files that describe a model without changing it


def model_files(model_dir: Path) -> list[str]:
    """The names of the folder's top-level files that make the model: weights, configuration, tokenizer, template."""
    return sorted(p.name for p in Path(model_dir).iterdir() if p.is_file() and not p.name.lower().startswith(IGNORED))


def files_digest(model_dir: str | Path, names) -> str:
    """The sha256 of the named files of a folder (names and contents; a missing one is left out)."""
    total = hashlib.sha256()
    for name in names:
        path = Path(model_dir) / name
        if path.is_file():
            with open(path, "rb") as handle:
                total.update(f"{name}\0{hashlib.file_digest(handle, 'sha256').hexdigest()}\n".encode())
    return total.hexdigest()


def weights_digest(model_dir: str | Path) -> str:
    """The sha256 of the folder's model files (names and contents), cached while they are unchanged."""
    folder = Path(model_dir).resolve()
    names = model_files(folder)
    stamp = [[name, (st := (folder / name).stat()).st_size, st.st_mtime_ns] for name in names]
    store = cache_dir() / "digests"
    store.mkdir(parents=True, exist_ok=True)
    record = store / f"{hashlib.sha256(str(folder).encode()).hexdigest()[:24]}.json"
    try:
        known = json.loads(record.read_text())
        if known["stamp"] == stamp:
            return known["digest"]
    except (OSError, ValueError, KeyError):
        pass
    digest = files_digest(folder, names)
    partial = record.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({"folder": str(folder), "stamp": stamp, "digest": digest}))
    os.replace(partial, record)  # whole or not at all: concurrent processes write the same digest
    return digest
