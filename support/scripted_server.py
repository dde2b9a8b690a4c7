"""A scripted OpenAI-style chat server, for the stage-3 tests and bench/stage3_speed.py.

It exists only to capture request bodies and to inject faults (HTTP 500s, slow replies, empty
captions) or a fixed latency that a real server cannot be made to produce on demand; the tests'
happy paths run against a real llama.cpp server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    """``reply(body, attempt) -> (status, text, delay_s[, finish_reason])`` answers each chat request
    (finish_reason "stop" unless given); ``attempt`` counts the requests seen with the same body.
    Every body is kept in ``bodies``."""

    def __init__(self, reply: Callable[[dict, int], tuple[int, str, float]]):
        self.bodies: list[dict] = []
        self.attempts: dict[str, int] = {}
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "scripted-model", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = json.dumps(body, sort_keys=True)
                with lock:
                    outer.bodies.append(body)
                    attempt = outer.attempts[key] = outer.attempts.get(key, 0) + 1
                status, text, delay, *finish = reply(body, attempt)
                if delay:
                    threading.Event().wait(delay)
                try:
                    if status != 200:
                        self._send(status, {"error": {"message": text}})
                    else:
                        self._send(200, {"choices": [{"index": 0, "finish_reason": (finish or ["stop"])[0],
                                                      "message": {"role": "assistant", "content": text}}]})
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
