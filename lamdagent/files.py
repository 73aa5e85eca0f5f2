"""The project's files: where studies, tasks, prompts and caches live; reading YAML; folders written whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lamdagent.errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parent
CONF_DIR = (PACKAGE_DIR / "conf").resolve()  # the studies and tasks that ship with the package (a link to conf/ in a clone)
PROMPTS_DIR = (PACKAGE_DIR / "prompts").resolve()
CONF_PATH_ENV = "LAMDAGENT_CONF_PATH"
_extra_conf_dirs: list[Path] = []  # --conf-dir, first


def add_conf_dir(path: str | Path) -> None:
    """A folder of the user's own studies/, tasks/ (and prompts/) searched before all others; also put
    first on $LAMDAGENT_CONF_PATH, which the processes the tool starts (Ray and accelerate workers) inherit."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"--conf-dir {str(path)!r} is not a folder")
    _extra_conf_dirs.insert(0, folder.resolve())
    os.environ[CONF_PATH_ENV] = os.pathsep.join([str(folder.resolve()), *filter(None, os.environ.get(CONF_PATH_ENV, "").split(os.pathsep))])


def conf_dirs() -> list[Path]:
    """Where studies and tasks are looked up, first match winning: --conf-dir, $LAMDAGENT_CONF_PATH
    (folders separated by the path separator), ./conf in the working directory, the package's own."""
    listed = [Path(p).expanduser() for p in os.environ.get(CONF_PATH_ENV, "").split(os.pathsep) if p]
    found = []
    for folder in [*_extra_conf_dirs, *listed, Path.cwd() / "conf", CONF_DIR]:
        folder = folder.resolve()
        if folder.is_dir() and folder not in found:
            found.append(folder)
    return found


def conf_files(kind: str) -> dict[str, Path]:
    """`studies` or `tasks`: every YAML file by name (subfolders of tasks/ included), the first
    folder of the search path winning a name."""
    files: dict[str, Path] = {}
    for folder in reversed(conf_dirs()):
        files.update({path.stem: path for path in sorted((folder / kind).rglob("*.yaml"))})
    return dict(sorted(files.items()))


def prompt_file(name: str) -> Path:
    """The agent's prompt template `name`: a prompts/ folder beside or inside a conf folder of the
    search path, ./prompts, or the package's own."""
    candidates = [c for folder in conf_dirs() if folder != CONF_DIR for c in (folder / "prompts", folder.parent / "prompts")]
    for folder in [*candidates, PROMPTS_DIR]:
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"no prompt template {name!r} in {[str(c) for c in candidates] + [str(PROMPTS_DIR)]}")


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
