"""A fault-injecting OpenAI-compatible chat server on 127.0.0.1, for the client's error paths.

It is not a model: it answers from a script of behaviours, one per request (then a default),
so tests can make a server return 429 or 500, stall past the client's timeout, drop the
connection, or send a malformed body. Engines themselves are tested against real servers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "Explanation1: fine.\nRating: 2\nExplanation2: both.\nOrientation: Good"


class FaultyChatServer:
    """``with FaultyChatServer(["429", "ok"]) as s: s.url`` -> ``http://127.0.0.1:PORT/v1``.

    Behaviours: ``ok`` (a valid completion; its text is :data:`ANSWER` or the one set in
    ``answer``), ``429``, ``500``, ``503``, ``stall`` (sleep ``stall_s`` before answering),
    ``drop`` (close without a response), ``malformed`` (200 with a body that is not JSON),
    ``noshape`` (200 JSON without choices), ``empty`` (a completion with empty content),
    ``length`` (a completion cut off at the token limit: finish reason ``length``),
    ``retry-after:N`` (429 with ``Retry-After: N``), ``echo-key`` (401 whose error message
    repeats the request's Authorization header, as some providers do). ``answer`` is a text
    or a function of the request body; ``script`` items may also be functions of the body
    returning a behaviour.
    """

    def __init__(
        self, script=(), default: str = "ok", answer: str = ANSWER, stall_s: float = 2.0, delay_s: float = 0.0
    ):
        self.script = deque(script)
        self.default, self.answer, self.stall_s, self.delay_s = default, answer, stall_s, delay_s
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    behaviour = server.script.popleft() if server.script else server.default
                    if callable(behaviour):
                        behaviour = behaviour(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay_s)
                    server._respond(self, behaviour, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _respond(self, h: BaseHTTPRequestHandler, behaviour: str, body: dict) -> None:
        if behaviour == "drop":
            h.close_connection = True
            h.connection.shutdown(2)
            return
        if behaviour == "stall":
            time.sleep(self.stall_s)
            behaviour = "ok"
        status, payload, headers = 200, None, {}
        if behaviour in ("429", "500", "503"):
            status, payload = int(behaviour), json.dumps({"error": {"message": f"injected {behaviour}"}})
        elif behaviour.startswith("retry-after:"):
            status, headers = 429, {"Retry-After": behaviour.split(":", 1)[1]}
            payload = json.dumps({"error": {"message": "slow down"}})
        elif behaviour == "echo-key":
            key = h.headers.get("Authorization", "")
            status, payload = 401, json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}})
        elif behaviour == "malformed":
            payload = "{this is not json"
        elif behaviour == "noshape":
            payload = json.dumps({"id": "x", "object": "chat.completion"})
        else:
            text = "" if behaviour == "empty" else self.answer(body) if callable(self.answer) else self.answer
            payload = json.dumps(
                {
                    "id": "cmpl-1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "m"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "length" if behaviour == "length" else "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
            )
        data = payload.encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def __enter__(self) -> FaultyChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def vllm_server(model_dir, served_name: str, log_dir, extra_args=(), start_timeout: float = 240):
    """Run vLLM's own OpenAI-compatible server on 127.0.0.1 (a generator for fixtures).

    Yields the ``.../v1`` base URL once ``/health`` answers; stops the server afterwards.
    """
    import os
    import socket
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    import pytest

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(log_dir) / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--enforce-eager",
        "--max-model-len",
        "4096",
        *extra_args,
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_HOST_IP": "127.0.0.1"}
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_timeout
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM server did not start in {start_timeout:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield url + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
