"""The auditor's flow: benchmark a model, sign and publish the result, verify it is logged.

    python examples/auditor_flow.py --work runs/audit      # node at CUSTODES_NODE_URL

Each step is the `custodes` command an auditor types:

1. `custodes eval run` against the model (the tiny local one of local_openai_model.py,
   or CUSTODES_EXAMPLE_MODEL_URL);
2. `custodes keys generate --kind entry`: the auditor's signing key;
3. `custodes registry principal ... auditor`: the node's admin registers the auditor
   and hands over an API token (here done with CUSTODES_ADMIN_TOKEN; on a real node the
   admin does it for you);
4. `custodes eval publish`: the result, signed with the auditor's key, is logged;
5. `custodes eval show INDEX`: anyone reads it back and verifies its inclusion proof
   against the node's signed checkpoint.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

from enrolment import admin_token, node_url
from local_openai_model import custodes, local_model, run_benchmark

from custodes.client import Client

_SHOW_S = 30.0  # the result is provable once a checkpoint covers it (about a second)


def register_auditor(node: str, work: Path) -> tuple[str, str, Path]:
    """(principal id, API token, key file) of a newly registered auditor."""
    jurisdiction = str(Client(node).node_info().jurisdiction)
    auditor = f"auditor:lab-{secrets.token_hex(3)}"
    key_file = work / "auditor.key"
    custodes("keys", "generate", auditor, "--kind", "entry", "--out", str(key_file))
    os.environ.setdefault("CUSTODES_ADMIN_TOKEN", admin_token())
    token = custodes(
        "registry", "principal", auditor, "auditor", jurisdiction,
        "--key", str(key_file), "--node", node,
    ).strip()  # fmt: skip
    return auditor, token, key_file


def show_when_provable(node: str, index: int) -> str:
    deadline = time.monotonic() + _SHOW_S
    while True:
        done = subprocess.run(
            [sys.executable, "-m", "custodes", "eval", "show", str(index), "--node", node],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0 or time.monotonic() > deadline:
            return done.stdout or done.stderr
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node", default=node_url())
    parser.add_argument("--work", default="runs/audit", help="a directory for the run and key")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    with local_model() as (url, model):
        print(run_benchmark(url, model, str(work / "run")))
    auditor, token, key_file = register_auditor(args.node, work)
    print(f"registered {auditor}; its key is {key_file}")
    published = custodes(
        "eval", "publish", str(work / "run"), "--node", args.node,
        "--as", auditor, "--token", token, "--key", str(key_file),
    )  # fmt: skip
    print(published.strip())
    index = int(re.findall(r"log index (\d+)", published)[-1])
    shown = show_when_provable(args.node, index)
    print(shown)
    return 0 if "verified" in shown else 1


if __name__ == "__main__":
    raise SystemExit(main())
