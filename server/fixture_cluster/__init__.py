"""A read-only fixture Kubernetes API server that serves incident scenarios from YAML.

Good enough for the real ``kubernetes-mcp-server`` (and ``kubectl``) to investigate a
scenario: discovery, list/get with selectors, server-side Table output, pod logs and
access reviews. Every write is refused with 405 and recorded.

    scenario = load_scenario(Path("examples/scenarios/stuck-namespace"))
    with FixtureCluster(scenario) as cluster:
        cluster.write_kubeconfig(Path("/tmp/kubeconfig"))
        ...
        assert cluster.write_requests == []
"""

from .cluster import FixtureCluster, RecordedRequest
from .scenario import Scenario, ScenarioError, load_scenario

__all__ = ["FixtureCluster", "RecordedRequest", "Scenario", "ScenarioError", "load_scenario"]
