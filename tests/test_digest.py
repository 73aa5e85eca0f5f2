"""The base model's weights are part of every lineage's root: a store shared by machines whose bases
differ (a built-in warm base is pre-trained on each machine) never reuses one's models for the other's."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from lamdagent.models import digest
from lamdagent.models.digest import weights_digest
from lamdagent.models.folders import TINY_LLAMA, build_tiny_llama
from lamdagent.tracking import Kind, Status

SMALL = {**TINY_LLAMA, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}


def perturb(folder, seed: int = 1):
    """Change one weight of the folder's model in place, as another machine's pre-training would."""
    path = folder / "model.safetensors"
    tensors = load_file(path)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + torch.randn(tensors[name].shape, generator=torch.Generator().manual_seed(seed)) * 1e-3
    save_file(tensors, path, metadata={"format": "pt"})


def test_the_digest_follows_the_contents_not_the_name_or_the_readme(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    build_tiny_llama(first, 0, SMALL)
    build_tiny_llama(second, 0, SMALL)
    assert weights_digest(first) == weights_digest(second)  # the same bytes in another folder
    (second / "README.md").write_text("a model card")
    assert weights_digest(second) == weights_digest(first)
    perturb(second)
    assert weights_digest(second) != weights_digest(first)


def test_an_unchanged_folder_is_not_read_again_and_a_changed_one_is(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    build_tiny_llama(folder, 0, SMALL)
    before = weights_digest(folder)
    monkeypatch.setattr(digest, "_hash", lambda files: pytest.fail("an unchanged folder was hashed again"))
    assert weights_digest(folder) == before
    monkeypatch.undo()
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # same size; the modification time moves
    path.write_bytes(bytes(data))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert weights_digest(folder) != before


def test_a_base_with_other_weights_under_the_same_name_reuses_nothing(tracking_uri, tmp_path):
    from rich.console import Console

    from lamdagent.config import load_config
    from lamdagent.console import Display
    from lamdagent.exploration.runner import Runner, Step
    from lamdagent.exploration.seeds import prepare_base, specialist_action
    from lamdagent.exploration.study import Study
    from lamdagent.tracking import Tracker
    from tests.conftest import FAST

    folder = tmp_path / "base"
    build_tiny_llama(folder, 0, SMALL)
    cfg = load_config("demo", [*FAST, "data.val_size=2", f"base_model={folder}"])
    study, tracker = Study(cfg), Tracker(tracking_uri)
    experiment = tracker.experiment(cfg.name)

    def seeds():
        """The base and one specialist in a new exploration of the same store: (statuses, base fingerprint)."""
        runner = Runner(study, tracker, tracker.start_exploration(experiment, cfg.name, {}, {}), experiment, Display(Console(quiet=True)),
                        base=prepare_base(cfg), weights={t: 1.0 for t in study.task_names})
        base = runner.produce(Step.of_base(runner.base, Kind.SEED), finish=True)
        spec = runner.produce(Step.of_action(specialist_action(study, base.model, study.tasks[0]), Kind.SEED, 0, "spec"), finish=True)
        return (base.status, spec.status), runner.base.fingerprint

    made, first = seeds()
    again, same = seeds()
    perturb(folder)  # the same name, other weights: another machine's build of the base
    other, changed = seeds()

    assert made == (Status.OK, Status.OK) and again == (Status.CACHED, Status.CACHED) and same == first
    assert other == (Status.OK, Status.OK) and changed != first  # built and trained again, not reused
