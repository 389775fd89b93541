"""P8: database bytes per session, against the raw bytes it holds.

The service's runtime in-process (workers, event log, session index, checkpointer; no
HTTP) on a fresh SQLite file; K sessions per iteration count (fixture MCP server, 2 tools
per iteration of 4 kB and 20 kB, the 20 kB one capped at 16 kB), one count after the
other. After each group the event log is flushed and the WAL checkpointed (TRUNCATE), and
the growth of the file is divided by K. Raw bytes: the UTF-8 bytes of every prompt message
of every model call plus every (capped) tool result of the session, as its timeline shows
them. Per-table growth comes from SQLite's dbstat."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from bench.common import Plan, Result, bench_alert, growth, registry, scripted_model, settings

ID = "P8"
TITLE = "database bytes per session at 1, 5, 10, 20 iterations"
TARGET = "≤ 2× the raw prompts + tool results, linear growth"


def checkpoint_and_size(db: Path) -> tuple[int, dict[str, int]]:
    """Fold the WAL into the file; (file + WAL bytes, bytes per table/index)."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        for _ in range(50):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                break
        tables = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
    wal = Path(f"{db}-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0), tables


async def raw_bytes(saver: Any, session_id: str) -> int:
    from server.history import build_timeline, load_checkpoints

    total = 0
    for entry in build_timeline(await load_checkpoints(saver, session_id)):
        if entry["type"] == "llm_interaction":
            total += sum(len(m["content"].encode()) for m in entry["messages"])
        else:
            total += len(str(entry["result"]).encode())
    return total


async def run(smoke: bool) -> Result:
    from graph.alert import Alert
    from graph.models import ModelChoice
    from server.runtime import open_runtime

    counts = [1, 2] if smoke else [1, 5, 10, 20]
    per_count = 1 if smoke else 4
    rows: list[dict[str, Any]] = []
    here = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="bench-p8-") as tmp:
        os.chdir(tmp)  # the runtime writes MCP server logs under ./data/logs
        try:
            db = Path(tmp) / "history.db"
            async with open_runtime(
                settings(db),
                registry=registry(),
                chat_model=(ModelChoice("scripted", "bench"), scripted_model(0.0)),
                recover=False,
            ) as runtime:
                await runtime.events.flush()
                size, tables = checkpoint_and_size(db)
                empty = size
                for n in counts:
                    plan = Plan(iterations=n, tools=2, latency=0.0, sizes=(4000, 20000))
                    raw = 0
                    for _ in range(per_count):
                        state, _ = await runtime.investigations.submit(
                            Alert.model_validate(bench_alert(plan))
                        )
                        final = await runtime.investigations.wait(state.session_id)
                        if final.status != "completed":
                            raise RuntimeError(f"bench session failed: {final.error}")
                        raw += await raw_bytes(runtime.saver, state.session_id)
                    await runtime.events.flush()
                    new_size, new_tables = checkpoint_and_size(db)
                    per_session = (new_size - size) / per_count
                    by_table = {
                        name: round((new_tables.get(name, 0) - tables.get(name, 0)) / per_count)
                        for name in new_tables
                        if new_tables.get(name, 0) != tables.get(name, 0)
                    }
                    rows.append(
                        {
                            "iterations": n,
                            "db_bytes_per_session": round(per_session),
                            "raw_bytes_per_session": round(raw / per_count),
                            "ratio": round(per_session / (raw / per_count), 3),
                            "by_table": by_table,
                        }
                    )
                    size, tables = new_size, new_tables
        finally:
            os.chdir(here)
    worst = max(r["ratio"] for r in rows)
    xs = [r["iterations"] for r in rows]
    db_growth = growth(xs, [r["db_bytes_per_session"] for r in rows])
    raw_growth = growth(xs, [r["raw_bytes_per_session"] for r in rows])
    linear = db_growth <= 1.25
    top = rows[-1]
    return Result(
        id=ID,
        title=TITLE,
        value=worst,
        unit="× raw (worst)",
        target=TARGET,
        passed=(worst <= 2 and linear) if not smoke else None,
        summary="; ".join(
            f"{r['iterations']} it: {r['db_bytes_per_session'] / 1024:,.0f} KiB = "
            f"{r['ratio']:.2f}× raw"
            for r in rows
        )
        + f"; marginal growth {db_growth:.2f} (raw {raw_growth:.2f})",
        details={
            "rows": rows,
            "sessions_per_count": per_count,
            "empty_db_bytes": empty,
            "growth_db": round(db_growth, 3),
            "growth_raw": round(raw_growth, 3),
            "largest_table_at_top": max(top["by_table"], key=lambda k: top["by_table"][k]),
        },
    )
