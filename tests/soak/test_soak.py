"""The fault-injection soak (tests/soak/soak.py) at CI size: 200 alerts, 429/500 answers
from the model, failing MCP calls and two SIGKILLs of the service. Nothing may be lost:
every alert ends completed, or failed with the reason."""

from __future__ import annotations

import pytest

from tests.soak.soak import SoakConfig, run_soak


@pytest.mark.timeout(300)
async def test_soak_loses_no_alert(tmp_path):
    report = await run_soak(SoakConfig(alerts=200, time_limit=240, workdir=tmp_path / "soak"))
    print("\n" + report.text())

    assert len(report.kills) == 2, report.text()
    assert report.accepted == 200, report.text()
    assert report.lost == 0, report.text()
    assert report.stuck == 0, report.text()
    assert report.queue_at_end == {**report.queue_at_end, "running": 0, "queued": 0}
    assert report.duplicates == 0, report.text()
    assert report.completed + report.failed == 200
    assert report.failed_without_reason == 0, report.text()
    assert report.finished_calls_repeated == 0, report.text()
    assert report.llm_injected_failures > 0 and report.tool_calls_failed > 0
    assert report.ok
