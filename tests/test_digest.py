"""The base model's weights are part of every lineage's root: a store shared by machines whose bases
differ (a built-in warm base is pre-trained on each machine) never reuses one's models for the other's."""

from __future__ import annotations

import io
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from lamdagent.exploration.seeds import announce_other_builds
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
    monkeypatch.setattr(digest, "files_digest", lambda *args: pytest.fail("an unchanged folder was hashed again"))
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
        """The base and one specialist in a new exploration of the same store: (statuses, base fingerprint, console)."""
        console = Console(record=True, width=400, file=io.StringIO())
        runner = Runner(study, tracker, tracker.start_exploration(experiment, cfg.name, {}, {}), experiment, Display(console),
                        base=prepare_base(cfg), weights={t: 1.0 for t in study.task_names})
        announce_other_builds(runner)
        base = runner.produce(Step.of_base(runner.base, Kind.SEED), finish=True)
        spec = runner.produce(Step.of_action(specialist_action(study, base.model, study.tasks[0]), Kind.SEED, 0, "spec"), finish=True)
        return (base.status, spec.status), runner.base, console.export_text()

    made, first, said_first = seeds()
    again, same, said_again = seeds()
    perturb(folder)  # the same name, other weights: another machine's build of the base
    other, changed, said_other = seeds()

    assert made == (Status.OK, Status.OK) and again == (Status.CACHED, Status.CACHED) and same.fingerprint == first.fingerprint
    assert other == (Status.OK, Status.OK) and changed.fingerprint != first.fingerprint  # built and trained again, not reused
    assert "other weights" not in said_first + said_again
    assert f"built from other weights (sha256 {first.digest[:12]}; here {changed.digest[:12]})" in said_other


def test_a_store_from_before_the_digest_is_announced(tracking_uri, tmp_path):
    """Base runs without the digest tag (made by an earlier version) are said on the console, once."""
    from rich.console import Console

    from lamdagent.config import load_config
    from lamdagent.console import Display
    from lamdagent.exploration.runner import Runner
    from lamdagent.exploration.seeds import ensure_seeds, prepare_base
    from lamdagent.exploration.study import Study
    from lamdagent.tracking import Tracker
    from tests.conftest import FAST

    folder = tmp_path / "base"
    build_tiny_llama(folder, 0, SMALL)
    cfg = load_config("demo", [*FAST, "data.val_size=2", f"base_model={folder}"])
    tracker = Tracker(tracking_uri)
    experiment = tracker.experiment(cfg.name)
    parent = tracker.start_exploration(experiment, cfg.name, {}, {})
    tracker.start_child(parent, Kind.SEED, 0, "base", {"pipeline": "base", "source": str(folder), "fingerprint": "an-old-one"}, experiment_id=experiment)
    console = Console(record=True, width=400, file=io.StringIO())
    study = Study(cfg)
    runner = Runner(study, tracker, parent, experiment, Display(console), base=prepare_base(cfg))
    ensure_seeds(study, runner)
    assert "made before the base's weights were part of every fingerprint" in console.export_text(clear=False)  # the start says it
    announce_other_builds(runner)
    assert console.export_text().count("1 base run(s) of") == 1  # and not again
