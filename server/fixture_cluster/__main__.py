"""CLI: ``python -m server.fixture_cluster SCENARIO_DIR [--kubeconfig PATH]`` (foreground)."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from .cluster import FixtureCluster
from .scenario import ScenarioError, load_scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.fixture_cluster",
        description="Serve a scenario folder as a read-only fixture Kubernetes API server.",
    )
    parser.add_argument("scenario", type=Path, help="scenario folder (holds cluster.yaml)")
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for it here")
    parser.add_argument("--namespace", default="default", help="kubeconfig default namespace")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    args = parser.parse_args(argv)

    try:
        scenario = load_scenario(args.scenario)
    except (OSError, ScenarioError) as exc:
        parser.error(str(exc))
    cluster = FixtureCluster(scenario, host=args.host, port=args.port, log_requests=not args.quiet)
    cluster.start()
    if args.kubeconfig:
        cluster.write_kubeconfig(args.kubeconfig, namespace=args.namespace)
        print(f"kubeconfig: {args.kubeconfig}", file=sys.stderr, flush=True)
    print(cluster.url, flush=True)  # last: once printed, the kubeconfig exists
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
