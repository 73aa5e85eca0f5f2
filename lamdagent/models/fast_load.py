"""Loading what the tool itself wrote, without transformers' per-load machinery.

For the demo's tiny model, `from_pretrained` costs 21 ms and the tokenizer 3.7 ms, against a
merge of ~0.2 s; SmolLM2-135M's tokenizer alone takes 150 ms to load. Here a single-file
checkpoint is built from its config (8.5 ms, equal weights), configs are parsed once per content,
and evaluation shares one tokenizer per distinct set of tokenizer files.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path

from lamdagent.models.digest import files_digest

# what AutoTokenizer reads (config.json: the tokenizer class when tokenizer_config.json does not name it)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "vocab.txt", "chat_template.jinja", "chat_template.json", "config.json")
KEPT = 8  # configs and tokenizers kept per process (a study has a handful of distinct ones)
_configs: OrderedDict[str, object] = OrderedDict()
_tokenizers: OrderedDict[str, object] = OrderedDict()


def load_single_file(model_dir: Path, dtype):
    """The model of a folder holding one `model.safetensors` whose tensors are exactly the model's
    weights (what save_pretrained and mergekit write for a small model), built from its config.
    None for any other folder (sharded, renamed keys, ...): the caller uses from_pretrained."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, GenerationConfig
    from transformers.initialization import no_init_weights

    weights = model_dir / "model.safetensors"
    if not weights.is_file() or any(model_dir.glob("*.safetensors.index.json")):
        return None
    with no_init_weights():
        model = AutoModelForCausalLM.from_config(_config(model_dir), dtype=dtype)
    model.tie_weights()  # as the config says (skipped with the initialisation)
    state = load_file(weights)
    tied = {target for target, source in (model._tied_weights_keys or {}).items()
            if source in state and model.get_parameter(target) is model.get_parameter(source)}
    if set(state) != set(model.state_dict()) - tied:
        return None
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=False, assign=True)  # all but the tied
    model.tie_weights()
    if (model_dir / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(model_dir)
    return model.eval()


def shared_tokenizer(model_dir: Path):
    """The folder's tokenizer, one instance per process for identical tokenizer files (the models
    of a study share theirs). For evaluation only, which sets the same padding on it each time;
    training loads a tokenizer of its own."""
    from transformers import AutoTokenizer

    key = files_digest(model_dir, TOKENIZER_FILES)
    return _kept(_tokenizers, key, lambda: AutoTokenizer.from_pretrained(model_dir))


def _config(model_dir: Path):
    """The folder's config, parsed once per content; a copy, since building a model may change it,
    naming this folder as from_pretrained does (models of a study share one config content, and
    TRL's DPOTrainer loads its reference model from the folder the config names)."""
    from transformers import AutoConfig

    config = copy.deepcopy(_kept(_configs, files_digest(model_dir, ("config.json",)), lambda: AutoConfig.from_pretrained(model_dir)))
    config.name_or_path = str(model_dir)
    return config


def _kept(cache: OrderedDict, key: str, build):
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = build()
    if len(cache) > KEPT:
        cache.popitem(last=False)
    return value
