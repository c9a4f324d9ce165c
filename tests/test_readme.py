"""The README's tutorial, run command by command as a person would type it (from a scratch directory)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def tutorial_commands() -> list[tuple[str, int]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Tutorial"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        expected = re.search(r"#\s*exit (\d)", line)
        commands.append((line, int(expected.group(1)) if expected else 0))
    return commands


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "verify").exists(), reason="needs the project's .venv")
def test_readme_tutorial_runs(tmp_path):
    for name in (".venv", "rules", "proofs"):
        os.symlink(ROOT / name, tmp_path / name)
    commands = tutorial_commands()
    assert len(commands) >= 8
    outputs = []
    for command, expected in commands:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        outputs.append(done.stdout)
        assert done.returncode == expected, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert "Traceback" not in done.stdout + done.stderr, command
    joined = "\n".join(outputs)
    assert "REFUTED" in joined and "CERTIFIED" in joined
    assert "certified under precondition" in joined
    assert "passes 1" in joined
    assert (tmp_path / "build" / "my.egg").exists() and (tmp_path / "rules.xml").exists()
    assert (tmp_path / "report" / "index.html").exists()
