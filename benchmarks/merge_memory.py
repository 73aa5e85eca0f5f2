"""Peak memory of a TIES merge through the tool (three models in: two inputs and their common
ancestor) vs. the size of one input model, measured in a fresh process: the peak resident memory
is reset after the imports (Linux /proc/self/clear_refs), so only the merge counts; the anonymous
part (sampled) leaves out the input files' pages mapped by safetensors. Reported, no target."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from benchmarks._common import Options, Result

NAME = "merge_memory"
MEDIUM = {"hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 8,
          "max_position_embeddings": 256, "tie_word_embeddings": True}


def make_models(root: Path, quick: bool) -> tuple[Path, Path, Path]:
    """A base (the builtin tiny Llama, or a ~100 MB one like it) and two perturbed children."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lamdagent.models.folders import resolve_base_model

    tiny = resolve_base_model("builtin:tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    torch.manual_seed(0)
    if quick:
        base = LlamaForCausalLM.from_pretrained(tiny)
    else:
        base = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **MEDIUM))
    paths = []
    for i, name in enumerate(("base", "a", "b")):
        if i:
            with torch.no_grad():
                for p in base.parameters():
                    p.add_(torch.randn(p.shape) * 0.01)
        base.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        paths.append(root / name)
    return tuple(paths)


def child(root: str) -> None:
    """In a fresh process: merge, and print the peak memory added by the merge."""
    from lamdagent.actions import ACTION_TYPES, ActionContext
    from lamdagent.models.folders import architecture
    from lamdagent.space import ModelObject, fingerprint

    root_path = Path(root)
    arch = architecture(root_path / "base")
    base = ModelObject("base", "r0", "", fingerprint("base"), "base", arch, path=root_path / "base")
    a, b = (ModelObject(n, f"r{n}", "", fingerprint(n), n, arch, path=root_path / n, parents=[base]) for n in ("a", "b"))
    ties = ACTION_TYPES["ties"](ACTION_TYPES["ties"].Settings())
    import mergekit.merge  # noqa: F401  (imports before the measurement)

    before, anon_before = _status("VmRSS"), _status("RssAnon")
    peak_anon, done = [anon_before], threading.Event()

    def sample():  # anonymous memory (not file pages mapped from the inputs), every 5 ms
        while not done.wait(0.005):
            peak_anon[0] = max(peak_anon[0], _status("RssAnon"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the current RSS
    ties.run({"model_a": a, "model_b": b, "weight": 0.5, "density": 0.5}, ActionContext(root_path / "out", 0, base.path))
    done.set()
    sampler.join()
    print(json.dumps({"rss_before": before, "peak": _status("VmHWM"), "anon_before": anon_before, "anon_peak": peak_anon[0]}))


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def run(opts: Options) -> Result:
    result = Result(NAME, "peak memory of a TIES merge vs the size of one input model")
    root = Path(tempfile.mkdtemp(prefix="lamdagent-merge-"))
    base, a, _ = make_models(root, opts.quick)
    model_bytes = sum(f.stat().st_size for f in a.glob("*.safetensors"))
    out = subprocess.run([sys.executable, "-m", "benchmarks.merge_memory", str(root)], capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    added = figures["peak"] - figures["rss_before"]
    result.details = {"model_weight_bytes": model_bytes, **figures, "peak_added_bytes": added, "model": "tiny" if opts.quick else MEDIUM}
    result.check("input model size", model_bytes / 2**20, "MiB")
    result.check("merge peak memory added", added / 2**20, "MiB")
    result.check("merge peak memory / one input model", added / model_bytes, "x")
    anon = figures["anon_peak"] - figures["anon_before"]
    result.details["anon_peak_added_bytes"] = anon
    result.check("of which anonymous (not mapped input files) / one input model", anon / model_bytes, "x")
    shutil.rmtree(root, ignore_errors=True)
    return result


if __name__ == "__main__":
    from benchmarks._common import quiet

    quiet()
    child(sys.argv[1])
