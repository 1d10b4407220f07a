"""Every command of the README's CLI tour works as written (on a fresh lake)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tour() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- readme-cli-tour -->\n```console\n(.*?)```", text, re.S)
    assert block, "README lost its CLI tour block"
    return [line[2:] for line in block.group(1).splitlines() if line.startswith("$ ")]


def test_readme_cli_tour(tmp_path: Path) -> None:
    lines = _tour()
    assert len(lines) >= 10
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    script = "\n".join(
        line.replace("/tmp/cascade-tour", str(tmp_path / "home")).replace("/tmp/notes.csv", str(tmp_path / "n.csv"))
        for line in lines
    )
    outputs = []
    for line in script.splitlines():
        if line.startswith("export "):
            key, value = line.removeprefix("export ").split("=", 1)
            env[key] = value
            continue
        proc = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=180)
        outputs.append((line, proc))
        if "version as of 1" in line:  # the documented user error
            assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1
        else:
            assert proc.returncode == 0, (line, proc.stderr)
    by_cmd = {line.split(" --")[0]: proc.stdout for line, proc in outputs}
    assert any("_id,sgv\nb,182\na,100" in out for out in by_cmd.values())
    assert "merged dev into main" in "".join(out for out in by_cmd.values())
