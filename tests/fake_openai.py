"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions protocol and replies
from a script: the only thing the tests fake, because it is outside the machine."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

Reply = "str | tuple[int, str] | Callable[[dict], str]"


DROP = object()  # a scripted reply: close the connection without answering


@dataclass
class Slow:
    """A scripted reply sent after `seconds` (past the client's timeout, it is never read)."""

    seconds: float
    reply: object


class FakeOpenAI:
    """Serves `POST /v1/chat/completions`. Each request takes the next scripted reply: a string
    (the message content), a `(status, body)` pair (an HTTP error), `Slow(seconds, reply)`, `DROP`,
    or a function of the request body returning one of those. When the script runs out,
    `default(request)` answers. Requests are recorded."""

    def __init__(self, default: Callable[[dict], str] | None = None):
        self.script: list = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.default = default or (lambda request: "")
        self.usage: dict | None = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}  # None: a server that reports none
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                reply = server.script.pop(0) if server.script else server.default
                if callable(reply):
                    reply = reply(body)
                if reply is DROP:  # the connection closes without an answer
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if isinstance(reply, Slow):
                    time.sleep(reply.seconds)
                    reply = reply.reply
                if isinstance(reply, tuple):
                    status, text = reply
                    self._send(status, {"error": {"message": text, "type": "server_error"}})
                    return
                content = reply
                self._send(200, {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    **({"usage": server.usage} if server.usage else {}),
                })

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def prompts(self) -> list[str]:
        """The last user message of each request."""
        return [r["messages"][-1]["content"] for r in self.requests]


def first_valid_choice(request: dict) -> str:
    """Answer a choice request with the first value of each enum in its JSON schema, and a
    memory request with a short text: a well-behaved agent."""
    response_format = request.get("response_format")
    if response_format:
        schema = response_format["json_schema"]["schema"]
        return json.dumps({key: spec["enum"][0] for key, spec in schema["properties"].items() if "enum" in spec})  # free text left out
    return "Lessons: fine-tuning on all data helps.\nNext: merge the best two models."
