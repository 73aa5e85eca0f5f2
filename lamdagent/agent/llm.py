"""Chat models the agent talks to: any OpenAI-compatible endpoint, or the offline local model."""

from __future__ import annotations

import os
from typing import Protocol

from lamdagent.errors import UserError


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
    """Chat completions through the `openai` client (retries 429/5xx/timeouts with backoff)."""

    def __init__(self, model: str, api_key: str, base_url: str | None = None, timeout: float = 60.0, max_retries: int = 3, structured_output: bool = True):
        import openai

        self.name = model
        self.structured_output = structured_output
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)

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

    def _complete(self, **request) -> str:
        import openai

        try:
            response = self._client.chat.completions.create(model=self.name, **request)
        except openai.APIError as err:
            raise ChatError(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from err
        return (response.choices[0].message.content or "").strip()


def openai_chat(model: str, base_url: str | None, api_key_env: str, role: str, timeout: float = 60.0, structured_output: bool = True):
    """A checked endpoint: a missing key or an unreachable server is a one-line error at start-up."""
    api_key = os.environ.get(api_key_env, "")
    if not api_key:
        raise UserError(f"{role} needs an API key in ${api_key_env}; set it" + (", or use agent.backend=local" if role.startswith("agent") else ""))
    chat = OpenAIChatModel(model, api_key, base_url=base_url, timeout=timeout, structured_output=structured_output)
    chat.check_reachable()
    return chat


def make_chat_model(agent_cfg, seed: int = 0) -> ChatModel:
    """The configured agent chat model, checked before any compute."""
    if agent_cfg.backend == "local":
        from lamdagent.agent.local_llm import LocalChatModel

        return LocalChatModel(seed=seed)
    return openai_chat(agent_cfg.model, agent_cfg.base_url, agent_cfg.api_key_env, "agent.backend=openai",
                       agent_cfg.request_timeout, agent_cfg.structured_output)
