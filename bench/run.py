"""Run the benchmark suite: `python -m bench.run [--smoke] [--only P1,P3] [--out DIR]`.

Writes DIR/latest.json and DIR/latest.md (smoke mode: smoke.json / smoke.md), with the
machine they ran on. Every benchmark reports medians and ratios measured in the same run;
the exit code is 0 unless a benchmark crashed (missing a target is reported, not failed).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/run.py` as well as `python -m bench.run`
    sys.path.insert(0, str(ROOT))

from bench.common import PATCHES_ENV, Result, apply_patches, machine  # noqa: E402

MODULES = {
    "P1": "bench.p01_step_overhead",
    "P2": "bench.p02_concurrency",
    "P3": "bench.p03_parallel_tools",
    "P4": "bench.p04_prompt_tokens",
    "P5": "bench.p05_sse_latency",
    "P6": "bench.p06_history_latency",
    "P7": "bench.p07_mcp_sessions",
    "P8": "bench.p08_db_bytes",
    "P9": "bench.p09_service_memory",
    "P10": "bench.p10_cli_startup",
    "P11": "bench.p11_prompt_chars",
    "P12": "bench.p12_cli_memory",
}


def _format_value(result: dict[str, Any]) -> str:
    value = result["value"]
    if value is None:
        return "—"
    text = f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"
    return f"{text} {result['unit']}".strip()


def _verdict(result: dict[str, Any]) -> str:
    if result["error"]:
        return "ERROR"
    return {True: "met", False: "MISSED", None: "report"}[result["passed"]]


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# Benchmarks{' (smoke: tiny sizes, numbers not meaningful)' if report['smoke'] else ''}",
        "",
        f"- date: {m['date']}",
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB",
        f"- Python {m['python']} ({m['implementation']}), LangGraph {m['langgraph']}",
        f"- platform: {m['platform']}",
        *(
            [
                f"- machine speed: a 5M-iteration Python loop took {m['reference_loop_s']:.2f} s"
                " (absolute figures of two runs compare as these do)"
            ]
            if m.get("reference_loop_s")
            else []
        ),
        f"- suite time: {report['seconds']:.0f} s",
        *([f"- patched with: {', '.join(report['patches'])}"] if report.get("patches") else []),
        "",
        "| id | what | measured | target | verdict | details |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        summary = r["error"] or r["summary"]
        lines.append(
            f"| {r['id']} | {r['title']} | {_format_value(r)} | {r['target']} | "
            f"{_verdict(r)} | {summary.replace('|', '/')} |"
        )
    lines += [
        "",
        "Medians and ratios are measured in the same run, on this machine; the fixture MCP "
        "server (`bench/mcp_server.py`) and the scripted model have fixed latencies. Each "
        "module's docstring (`bench/p*.py`) describes its method; `latest.json` has every "
        "figure behind this table.",
        "",
    ]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path, stem: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))


async def run_one(key: str, smoke: bool) -> Result:
    module = importlib.import_module(MODULES[key])
    start = time.perf_counter()
    try:
        result: Result = await module.run(smoke)
    except Exception as exc:
        traceback.print_exc()
        result = Result(
            id=key,
            title=module.TITLE,
            value=None,
            unit="",
            target=module.TARGET,
            passed=None,
            summary="",
            error=f"{type(exc).__name__}: {exc}",
        )
    result.seconds = time.perf_counter() - start
    return result


async def main_async(keys: list[str], smoke: bool, out: Path) -> int:
    patches = [p for p in os.environ.get(PATCHES_ENV, "").split(os.pathsep) if p]
    report: dict[str, Any] = {
        "machine": machine(reference=not smoke),
        "smoke": smoke,
        "patches": patches,
        "results": [],
    }
    start = time.perf_counter()
    crashed = False
    if smoke:  # overlap the slow start-ups with the in-process benchmarks
        from bench import cli_run, service

        if {"P2", "P5", "P6", "P9"} & set(keys):
            service.prefetch_smoke()
        if {"P10", "P11", "P12"} & set(keys):
            cli_run.prefetch()
    for key in keys:
        print(f"[bench] {key} ...", file=sys.stderr, flush=True)
        result = await run_one(key, smoke)
        crashed = crashed or result.error is not None
        report["results"].append(result.as_dict())
        verdict = _verdict(result.as_dict())
        print(
            f"[bench] {key} {verdict} ({result.seconds:.1f} s): {result.error or result.summary}",
            file=sys.stderr,
            flush=True,
        )
    from bench.cli_run import clear_runs
    from bench.harness import close_shared_toolbox
    from bench.service import close_shared

    await close_shared()
    await close_shared_toolbox()
    await clear_runs()
    report["seconds"] = round(time.perf_counter() - start, 1)
    write_report(report, out, "smoke" if smoke else "latest")
    print(markdown(report))
    return 1 if crashed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="Tiny sizes: seconds, for CI.")
    parser.add_argument("--only", default="", help="Comma-separated ids, e.g. P1,P3.")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="Where results go."
    )
    parser.add_argument(
        "--patch",
        action="append",
        default=[],
        type=Path,
        help="A Python file run before the benchmarks, here and in the service process "
        "(to measure a proposed fix without changing the code under test; see "
        "e.g. a proposed fix). Repeatable. Not applied to the CLI runs (P10-P12).",
    )
    args = parser.parse_args(argv)
    if args.patch:
        os.environ[PATCHES_ENV] = os.pathsep.join(str(p.resolve()) for p in args.patch)
    apply_patches()
    keys = [k.strip().upper() for k in args.only.split(",") if k.strip()] or list(MODULES)
    unknown = [k for k in keys if k not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(MODULES)}")
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    return asyncio.run(main_async(keys, args.smoke, args.out))


if __name__ == "__main__":
    sys.exit(main())
