"""The quick starts work as written: every ```sh block of each, in order, in one bash
session (stopping at the first failing command), on a fresh machine directory with the
ports swapped for free ones. And nothing a user reads points outside the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
QUICKSTARTS = ["quickstart-regulator.md", "quickstart-operator.md", "quickstart-auditor.md"]
PORTS = ("8400", "8600", "8601")  # the node's and the local models' in the text
_RUN_S = 420.0
# Links a reader may follow without leaving the machine or the repository.
LOCAL_HOSTS = re.compile(r"^https?://(127\.0\.0\.1|localhost|\[::1\])([:/]|$)")


def sh_blocks(text: str) -> str:
    return "\n".join(re.findall(r"^```sh\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL))


def script_of(name: str) -> str:
    script = sh_blocks((ROOT / "docs" / name).read_text())
    for port in PORTS:
        script = script.replace(port, str(free_port()))
    # Stop whatever the text left running in the background, even when a command fails.
    return "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script


@pytest.mark.integration
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", QUICKSTARTS)
def test_every_command_of_the_quick_start_works(name: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    bin_dir = str(Path(sys.executable).parent)  # `custodes` and `python` of this install
    env |= {"HOME": str(tmp_path), "PATH": f"{bin_dir}:{env['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", script_of(name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=_RUN_S,
    )
    assert done.returncode == 0, f"{name}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _reader_facing() -> list[Path]:
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").rglob("*.md")),
        *sorted((ROOT / "examples").glob("*")),
    ]


def test_nothing_a_user_reads_points_outside_the_repository() -> None:
    outside = []
    for path in _reader_facing():
        text = path.read_text()
        for url in re.findall(r"https?://[^\s)>\]`'\"]+", text):
            if not LOCAL_HOSTS.match(url):
                outside.append(f"{path.relative_to(ROOT)}: {url}")
        for target in re.findall(r"\]\(([^)#]+)", text):  # relative Markdown links
            if not (path.parent / target).exists():
                outside.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
        for target in re.findall(r"(?:\.\./)+[\w./-]*", text):  # paths up and out
            if not (path.parent / target).resolve().is_relative_to(ROOT):
                outside.append(f"{path.relative_to(ROOT)}: {target} (outside the repository)")
    assert outside == []
