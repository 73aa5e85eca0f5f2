"""Shared fixtures: a real MLflow sqlite store per test, one model cache per session, and the
fake OpenAI-compatible endpoint. And what a test needs beyond the Python packages
(`@pytest.mark.requires("chromium")`): without it the test skips, unless LAMDAGENT_CI_REQUIRE names it
(CI: .ci/run), where the skip is a failure and a named capability no selected test requires is an error."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# what a test may require (@pytest.mark.requires(...)); LAMDAGENT_CI_REQUIRE=chromium,postgres makes them compulsory
CAPABILITIES = {
    "chromium": "a headless Chromium (Debian: apt-get install chromium), for the MLflow UI test",
    "postgres": "PostgreSQL's initdb and pg_ctl (Debian: apt-get install postgresql) and psycopg2, for the tracking-server tests",
    "lm_eval": "lm-evaluation-harness (make install), for the conformance tests against lm-eval itself",
    "ray": "Ray (pip install ray), for the Ray executor's tests",
}
REQUIRE = "LAMDAGENT_CI_REQUIRE"


def _required() -> set[str]:
    return {name.strip() for name in os.environ.get(REQUIRE, "").split(",") if name.strip()}


def _requires(item) -> set[str]:
    return {name for mark in item.iter_markers("requires") for name in mark.args}


def pytest_configure(config):
    unknown = sorted(_required() - CAPABILITIES.keys())
    if unknown:
        raise pytest.UsageError(f"{REQUIRE} names {unknown}: expected a comma-separated subset of {sorted(CAPABILITIES)}")


def pytest_collection_finish(session):
    """Each required capability is needed by a test that runs: else nothing would check it."""
    needed = {name for item in session.items for name in _requires(item)}
    unchecked = sorted(_required() - needed)
    if unchecked and not session.config.option.collectonly:
        pytest.exit(f"{REQUIRE} requires {', '.join(unchecked)}, but no selected test needs it (a test lost its marker or was deselected)",
                    returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip of a test that needs a capability LAMDAGENT_CI_REQUIRE names is a failure, with the skip's reason."""
    report = yield
    missing = sorted(_requires(item) & _required())
    if report.skipped and missing and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but {REQUIRE} requires {'; '.join(CAPABILITIES[name] for name in missing)}: {reason}"
    return report


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
