"""A user's own studies, tasks and prompts, found from any project folder before the packaged ones."""

from __future__ import annotations

import shutil

import pytest

from lamdagent import files
from lamdagent.agent.prompts import template as load_template
from lamdagent.config import load_config, study_names
from lamdagent.evaluation.tasks import load_task, task_names


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder as the working directory, no search path set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(files.CONF_PATH_ENV, "")  # recorded: what --conf-dir adds to it is undone after the test
    monkeypatch.setattr(files, "_extra_conf_dirs", [])
    return tmp_path


def _own_study(folder, name: str = "my_study") -> None:
    (folder / "studies").mkdir(parents=True, exist_ok=True)
    (folder / "tasks").mkdir(parents=True, exist_ok=True)
    shutil.copy(files.CONF_DIR / "tasks" / "arith.yaml", folder / "tasks" / "my_arith.yaml")
    text = (folder / "tasks" / "my_arith.yaml").read_text().replace("name: arith", "name: my_arith")
    (folder / "tasks" / "my_arith.yaml").write_text(text)
    (folder / "studies" / f"{name}.yaml").write_text(f"name: {name}\ntasks: [my_arith]\ndatasets: [my_arith]\niterations: 1\n")


def test_the_packaged_studies_tasks_and_prompts_are_found_from_an_empty_folder(project):
    assert "demo" in study_names() and "arith" in task_names() and "bfcl_simple_python" in task_names()
    assert load_config("demo").name == "demo"
    assert load_template("action_type").template == (files.PROMPTS_DIR / "action_type.txt").read_text()


@pytest.mark.parametrize("how", ["working directory", "environment", "option"])
def test_a_users_own_folder_comes_first(project, monkeypatch, how):
    folder = project / "conf" if how == "working directory" else project / "elsewhere"
    _own_study(folder)
    (folder / "prompts").mkdir()
    (folder / "prompts" / "memory.txt").write_text("my own memory prompt $memory")
    if how == "environment":
        monkeypatch.setenv(files.CONF_PATH_ENV, str(folder))
    elif how == "option":
        files.add_conf_dir(folder)
    assert "my_study" in study_names() and "demo" in study_names()  # the packaged ones stay available
    cfg = load_config("my_study")
    assert cfg.tasks == ["my_arith"] and load_task("my_arith").name == "my_arith"
    assert load_template("memory").template == "my own memory prompt $memory"
    assert load_template("objects").template == (files.PROMPTS_DIR / "objects.txt").read_text()  # the rest: packaged


def test_an_unknown_conf_dir_is_a_one_line_error(project):
    from lamdagent.cli import main

    assert main(["explore", "--conf-dir", str(project / "nope"), "--dry-run"]) == 2
