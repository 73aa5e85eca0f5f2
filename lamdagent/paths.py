"""Where the project's files and caches live."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
PROMPTS_DIR = PROJECT_ROOT / "prompts"


def cache_dir() -> Path:
    """Built models, converted agent weights and data: `$LAMDAGENT_CACHE` or ~/.cache/lamdagent."""
    path = Path(os.environ.get("LAMDAGENT_CACHE", Path.home() / ".cache" / "lamdagent")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
