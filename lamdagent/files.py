"""The project's files: where studies, tasks, prompts and caches live; reading YAML; folders written whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lamdagent.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
PROMPTS_DIR = PROJECT_ROOT / "prompts"


def cache_dir() -> Path:
    """Built models, converted agent weights and data: `$LAMDAGENT_CACHE` or ~/.cache/lamdagent."""
    path = Path(os.environ.get("LAMDAGENT_CACHE", Path.home() / ".cache" / "lamdagent")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_yaml(path: Path):
    """A YAML file as an omegaconf node; malformed YAML is a one-line error naming the file and line."""
    import yaml
    from omegaconf import OmegaConf

    try:
        return OmegaConf.load(path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{str(path)!r}{where} is not valid YAML: {getattr(err, 'problem', None) or err}") from None


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """A fresh folder beside `target` to fill; when the block ends without error it is renamed to
    `target` in one step, so a crash never leaves a half-written folder. Whoever comes second (the
    target exists by then, made by another process) keeps the first one's folder and drops its own."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield staging
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
