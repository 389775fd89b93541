"""`make bench-smoke`: every benchmark runs at tiny sizes and produces numbers. Nothing
here asserts a timing (the machine is shared and noisy); `make bench` measures."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli_run import demo_available
from bench.run import MODULES

ROOT = Path(__file__).resolve().parents[1]

CLI_BENCHMARKS = {"P10", "P11", "P12"}


@pytest.mark.timeout(180)
def test_every_benchmark_produces_numbers_in_smoke_mode(tmp_path: Path) -> None:
    keys = [k for k in MODULES if demo_available() is None or k not in CLI_BENCHMARKS]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLM_", "SRE_AGENT", "OPENAI", "DEFAULT_LLM", "HISTORY_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            "--only",
            ",".join(keys),
            "--out",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert report["smoke"] is True
    assert report["machine"]["cores"] and report["machine"]["python"]
    assert [r["id"] for r in report["results"]] == keys
    for r in report["results"]:
        assert r["error"] is None, r
        assert isinstance(r["value"], int | float) and math.isfinite(r["value"]), r
        assert r["value"] >= 0, r
        assert r["summary"], r
    table = (tmp_path / "smoke.md").read_text()
    for key in keys:
        assert f"| {key} |" in table
