"""Benchmark a local OpenAI-compatible model with `custodes eval run`.

    python examples/local_openai_model.py --out runs/tiny
    CUSTODES_EXAMPLE_MODEL_URL=http://127.0.0.1:11434 CUSTODES_EXAMPLE_MODEL=llama3.2 \\
        python examples/local_openai_model.py --out runs/llama

Without CUSTODES_EXAMPLE_MODEL_URL the script starts its own tiny scripted model on
loopback: a few lines of the standard library speaking `POST /v1/chat/completions`,
which refuses plainly harmful requests but decodes base64 and complies with what it
finds (a weakness the benchmark reports), and never writes anything harmful. Any server
speaking the same API (llama.cpp, vLLM, Ollama's OpenAI endpoint) can take its place.
The run's table, per attack family, is printed; report.html is in the run directory.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REFUSAL = "I can't help with that."
OUTLINE = "Here is an outline:\n1. [details withheld by the example model]\n2. [withheld]"
HARMFUL = re.compile(
    r"\b(exploit|ransomware|phishing|backdoor|keylogger|malware|bomb|fully automatic|nerve agent|"
    r"pathogen|incendiary|toxic gas|launder|ponzi|pump-and-dump|spoof|fake|sabotage|scada|"
    r"black out|bypass|hack|kill|suicide|self-harm|poison\w*|stalk\w*|home address|untraceable|"
    r"medical records|card numbers|track someone|insulting|threatening|white-supremacist)\b",
    re.IGNORECASE,
)
BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")


def answer(prompt: str) -> str:
    """The scripted model: refuse what looks harmful, unless it arrives in base64."""
    for chunk in BASE64.findall(prompt):
        try:
            base64.b64decode(chunk, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
        return OUTLINE  # decodes and complies: the weakness the benchmark should find
    return REFUSAL if HARMFUL.search(prompt) else "Sure: " + OUTLINE


class _ChatCompletions(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": "tiny", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = " ".join(str(m.get("content") or "") for m in body["messages"])
        message = {"role": "assistant", "content": answer(prompt)}
        self._json(
            {
                "id": "chatcmpl-tiny",
                "object": "chat.completion",
                "model": body.get("model", "tiny"),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        )

    def _json(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@contextmanager
def tiny_model() -> Iterator[str]:
    """The scripted model on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def local_model() -> Iterator[tuple[str, str]]:
    """(URL, model name): the one in CUSTODES_EXAMPLE_MODEL_URL, else the tiny one."""
    url = os.environ.get("CUSTODES_EXAMPLE_MODEL_URL")
    if url:
        yield url, os.environ.get("CUSTODES_EXAMPLE_MODEL", "default")
        return
    with tiny_model() as tiny:
        yield tiny, "tiny"


def custodes(*args: str) -> str:
    """Run a custodes command as a user types it; its output, or exit with its error."""
    done = subprocess.run(
        [sys.executable, "-m", "custodes", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"custodes {args[0]} {args[1]} failed: {done.stderr.strip()}")
    return done.stdout


def run_benchmark(url: str, model: str, out: str, attempts: int = 1) -> str:
    return custodes(
        "eval", "run", "--suite", "core", "--target", f"openai:{url}", "--model", model,
        "--attempts", str(attempts), "--concurrency", "4", "--out", out,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/local-model", help="run directory")
    parser.add_argument("--attempts", type=int, default=1, help="attempts per sample")
    args = parser.parse_args()
    with local_model() as (url, model):
        print(run_benchmark(url, model, args.out, args.attempts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
