"""Shared fixtures: a real MLflow sqlite store per test, one model cache per session, and the
fake OpenAI-compatible endpoint."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# A small, fast version of the demo study for tests.
FAST = [
    "data.train_size=48",
    "data.val_size=12",
    "sft.epochs=1",
    "sft.batch_size=16",
    "sft.learning_rate=[3e-3]",
]


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory):
    """Built models and converted agent weights are shared by the whole session."""
    if "LAMDAGENT_CACHE" not in os.environ:
        os.environ["LAMDAGENT_CACHE"] = str(tmp_path_factory.mktemp("lamdagent-cache"))
    from lamdagent.console import quiet_libraries

    quiet_libraries()


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    """A fresh real MLflow store (sqlite + local artifacts) in a temp dir, also the default URI."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture
def fake_openai():
    from tests.fake_openai import FakeOpenAI, first_valid_choice

    with FakeOpenAI(default=first_valid_choice) as server:
        yield server
