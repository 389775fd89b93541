"""Unit tests of the fixture Kubernetes API server (server.fixture_cluster) over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from server.fixture_cluster import FixtureCluster, Scenario, ScenarioError, load_scenario
from server.fixture_cluster.tables import human_duration

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "examples" / "scenarios"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.fixture(scope="module")
def cluster() -> Iterator[FixtureCluster]:
    with FixtureCluster(load_scenario(SCENARIOS / "stuck-namespace")) as running:
        yield running


@pytest.fixture(scope="module")
def crashloop() -> Iterator[FixtureCluster]:
    with FixtureCluster(load_scenario(SCENARIOS / "crashloop-pod")) as running:
        yield running


@pytest.fixture
def api(cluster: FixtureCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=5) as client:
        yield client


def _names(items: list[dict[str, Any]]) -> list[str]:
    return [item["metadata"]["name"] for item in items]


# Discovery ----------------------------------------------------------------------------


def test_discovery_lists_builtin_and_custom_groups(api: httpx.Client) -> None:
    assert api.get("/version").json()["gitVersion"].startswith("v1.")
    assert api.get("/api").json()["versions"] == ["v1"]

    groups = {g["name"]: g for g in api.get("/apis").json()["groups"]}
    for name in ("apps", "billing.example.com", "authorization.k8s.io", "events.k8s.io"):
        assert name in groups
    assert groups["billing.example.com"]["preferredVersion"]["groupVersion"] == (
        "billing.example.com/v1"
    )

    custom = api.get("/apis/billing.example.com/v1").json()
    assert custom["kind"] == "APIResourceList"
    (invoices,) = custom["resources"]
    assert invoices["name"] == "invoices"
    assert invoices["singularName"] == "invoice"
    assert invoices["namespaced"] is True
    assert invoices["kind"] == "Invoice"
    assert invoices["shortNames"] == ["inv"]  # from the scenario's CRD
    assert {"get", "list"} <= set(invoices["verbs"])

    core = {r["name"]: r for r in api.get("/api/v1").json()["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["namespaced"] is True
    assert core["namespaces"]["namespaced"] is False
    assert core["nodes"]["kind"] == "Node"
    assert core["pods/log"]["verbs"] == ["get"]

    authz = api.get("/apis/authorization.k8s.io/v1").json()
    assert "selfsubjectaccessreviews" in {r["name"] for r in authz["resources"]}
    apps = {r["name"] for r in api.get("/apis/apps/v1").json()["resources"]}
    assert {"deployments", "replicasets", "statefulsets", "daemonsets"} <= apps


def test_custom_resource_without_crd_is_discovered() -> None:
    scenario = Scenario.from_documents(
        [
            {
                "apiVersion": "widgets.example.org/v1alpha1",
                "kind": "Gadget",
                "metadata": {"name": "g1", "namespace": "lab"},
            }
        ]
    )
    with FixtureCluster(scenario) as cluster, httpx.Client(base_url=cluster.url) as client:
        (gadgets,) = client.get("/apis/widgets.example.org/v1alpha1").json()["resources"]
        assert (gadgets["name"], gadgets["kind"], gadgets["namespaced"]) == (
            "gadgets",
            "Gadget",
            True,
        )
        listed = client.get("/apis/widgets.example.org/v1alpha1/namespaces/lab/gadgets").json()
        assert listed["kind"] == "GadgetList" and _names(listed["items"]) == ["g1"]
        # namespaces referenced by objects exist, as do the standard ones
        namespaces = _names(client.get("/api/v1/namespaces").json()["items"])
        assert {"lab", "default", "kube-system"} <= set(namespaces)


# Lists and gets -----------------------------------------------------------------------


def test_namespaced_list_and_get(api: httpx.Client) -> None:
    listed = api.get("/apis/billing.example.com/v1/namespaces/billing/invoices").json()
    assert listed["kind"] == "InvoiceList"
    assert listed["apiVersion"] == "billing.example.com/v1"
    assert listed["metadata"]["resourceVersion"]
    assert _names(listed["items"]) == ["invoice-2024-001"]

    invoice = api.get("/apis/billing.example.com/v1/namespaces/billing/invoices/invoice-2024-001")
    assert invoice.status_code == 200
    body = invoice.json()
    assert body["kind"] == "Invoice"
    assert body["metadata"]["finalizers"] == ["billing.example.com/invoice-protection"]
    assert body["metadata"]["deletionTimestamp"] == "2025-06-02T09:12:03Z"

    deployment = api.get("/apis/apps/v1/namespaces/billing-system/deployments/invoice-controller")
    assert deployment.json()["spec"]["replicas"] == 0
    assert api.get("/api/v1/namespaces/billing/invoices").status_code == 404  # wrong group


def test_all_namespaces_list(api: httpx.Client) -> None:
    pods = api.get("/api/v1/pods").json()
    assert pods["kind"] == "PodList" and pods["apiVersion"] == "v1"
    namespaces = {p["metadata"]["namespace"] for p in pods["items"]}
    assert namespaces == {"billing-system", "default", "kube-system"}
    assert all(p["kind"] == "Pod" and p["metadata"]["uid"] for p in pods["items"])
    events = api.get("/api/v1/events").json()
    assert events["kind"] == "EventList" and len(events["items"]) == 4


def test_cluster_scoped_get_shows_terminating_namespace(api: httpx.Client) -> None:
    namespace = api.get("/api/v1/namespaces/billing").json()
    assert namespace["kind"] == "Namespace"
    assert namespace["status"]["phase"] == "Terminating"
    assert namespace["spec"]["finalizers"] == ["kubernetes"]
    conditions = {c["type"]: c for c in namespace["status"]["conditions"]}
    assert conditions["NamespaceFinalizersRemaining"]["status"] == "True"
    assert (
        "billing.example.com/invoice-protection"
        in (conditions["NamespaceFinalizersRemaining"]["message"])
    )
    assert api.get("/api/v1/namespaces/billing/status").json()["status"]["phase"] == "Terminating"
    assert api.get("/api/v1/nodes/prod-eu-1-worker-a").json()["kind"] == "Node"


def test_label_selectors(api: httpx.Client) -> None:
    def pods(selector: str) -> list[str]:
        response = api.get("/api/v1/pods", params={"labelSelector": selector})
        assert response.status_code == 200, response.text
        return _names(response.json()["items"])

    assert pods("k8s-app=kube-dns") == ["coredns-7c65d6cfc9-2vq8j", "coredns-7c65d6cfc9-h7d4x"]
    assert pods("k8s-app==kube-dns,pod-template-hash=7c65d6cfc9") == pods("k8s-app=kube-dns")
    assert pods("app=status-page") == ["status-page-6c8f9d7b4-q2w8e"]
    assert "status-page-6c8f9d7b4-q2w8e" not in pods("app!=status-page")
    assert len(pods("app!=status-page")) == 3  # != also matches pods without the label
    assert pods("app") == ["status-page-6c8f9d7b4-q2w8e"]
    assert len(pods("!app")) == 3
    assert pods("app in (status-page,other)") == ["status-page-6c8f9d7b4-q2w8e"]
    assert len(pods("k8s-app notin (kube-dns)")) == 2
    assert api.get("/api/v1/pods", params={"labelSelector": "a=(b"}).status_code == 400
    assert api.get("/api/v1/pods", params={"limit": "many"}).status_code == 400


def test_field_selectors(api: httpx.Client) -> None:
    def names(path: str, selector: str) -> list[str]:
        response = api.get(path, params={"fieldSelector": selector})
        assert response.status_code == 200, response.text
        return _names(response.json()["items"])

    assert names("/api/v1/namespaces", "metadata.name=billing") == ["billing"]
    assert names("/api/v1/namespaces", "status.phase=Terminating") == ["billing"]
    assert names("/api/v1/pods", "metadata.namespace=default") == ["status-page-6c8f9d7b4-q2w8e"]
    assert names("/api/v1/pods", "spec.nodeName=prod-eu-1-worker-a") == [
        "billing-gateway-5f6d7c8b9-p4m2n",
        "coredns-7c65d6cfc9-2vq8j",
    ]
    assert names("/api/v1/pods", "status.phase!=Running") == []
    invoice_events = names(
        "/api/v1/events",
        "involvedObject.kind=Invoice,involvedObject.name=invoice-2024-001,"
        "involvedObject.namespace=billing",
    )
    assert invoice_events == ["invoice-2024-001.184a9c1f2b3d4e01"]
    assert len(names("/api/v1/namespaces/billing/events", "type=Warning")) == 1


def test_events_k8s_io_is_a_view_of_core_events(api: httpx.Client) -> None:
    events = api.get("/apis/events.k8s.io/v1/namespaces/billing/events").json()
    assert events["kind"] == "EventList" and events["apiVersion"] == "events.k8s.io/v1"
    warning = next(e for e in events["items"] if e["type"] == "Warning")
    assert warning["regarding"]["name"] == "invoice-2024-001"
    assert "invoice-protection" in warning["note"]
    assert warning["deprecatedCount"] == 17


def test_limit_and_continue(api: httpx.Client) -> None:
    first = api.get("/api/v1/pods", params={"limit": 3}).json()
    assert len(first["items"]) == 3 and first["metadata"]["continue"]
    rest = api.get(
        "/api/v1/pods", params={"limit": 3, "continue": first["metadata"]["continue"]}
    ).json()
    assert len(rest["items"]) == 1 and "continue" not in rest["metadata"]


# Table output ------------------------------------------------------------------------


def test_table_output_for_pods(api: httpx.Client) -> None:
    response = api.get("/api/v1/namespaces/kube-system/pods", headers={"Accept": TABLE})
    table = response.json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert all(
        {"name", "type", "format", "description", "priority"} <= set(c)
        for c in table["columnDefinitions"]
    )
    assert len(table["rows"]) == 2
    row = table["rows"][0]
    assert row["cells"][:4] == ["coredns-7c65d6cfc9-2vq8j", "1/1", "Running", "0"]
    assert row["cells"][4] == "84d"  # relative to the scenario's clock (2025-06-02T10:00Z)
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["namespace"] == "kube-system"

    full = api.get(
        "/api/v1/namespaces/kube-system/pods",
        params={"includeObject": "Object"},
        headers={"Accept": TABLE},
    ).json()
    assert full["rows"][0]["object"]["kind"] == "Pod"
    assert full["rows"][0]["object"]["spec"]["containers"]
    bare = api.get(
        "/api/v1/pods", params={"includeObject": "None"}, headers={"Accept": TABLE}
    ).json()
    assert "object" not in bare["rows"][0]


def test_table_output_for_namespaces_events_and_custom_resources(api: httpx.Client) -> None:
    namespaces = api.get("/api/v1/namespaces/billing", headers={"Accept": TABLE}).json()
    assert [c["name"] for c in namespaces["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert namespaces["rows"][0]["cells"][:2] == ["billing", "Terminating"]

    events = api.get("/api/v1/namespaces/billing/events", headers={"Accept": TABLE}).json()
    columns = [c["name"] for c in events["columnDefinitions"]]
    assert {"Type", "Reason", "Object", "Message"} <= set(columns)
    cells = dict(zip(columns, events["rows"][0]["cells"], strict=True))
    assert cells["Object"] == "invoice/invoice-2024-001"
    assert cells["Type"] == "Warning" and cells["Last Seen"] == "0s"

    invoices = api.get("/apis/billing.example.com/v1/invoices", headers={"Accept": TABLE}).json()
    columns = [c["name"] for c in invoices["columnDefinitions"]]
    assert columns == ["Name", "Customer", "Amount", "Phase", "Age"]  # CRD printer columns
    assert invoices["rows"][0]["cells"] == [
        "invoice-2024-001",
        "acme-corp",
        "12450.00",
        "PendingExport",
        "4d19h",
    ]


def test_table_shows_crashloop_restarts(crashloop: FixtureCluster) -> None:
    with httpx.Client(base_url=crashloop.url) as client:
        table = client.get(
            "/api/v1/namespaces/payments/pods",
            params={"fieldSelector": "metadata.name=payment-api-7f9c8d6b5-x7k2m"},
            headers={"Accept": TABLE},
        ).json()
    assert table["rows"][0]["cells"][1:4] == ["0/1", "CrashLoopBackOff", "12 (2m16s ago)"]


def test_human_duration() -> None:
    cases = {5: "5s", 119: "119s", 150: "2m30s", 600: "10m", 7200: "120m", 4 * 3600 + 60: "4h1m"}
    cases |= {30 * 3600: "30h", 3 * 86400 + 3600: "3d1h", 40 * 86400: "40d", 800 * 86400: "2y70d"}
    for seconds, expected in cases.items():
        assert human_duration(seconds) == expected


# Logs --------------------------------------------------------------------------------


def test_pod_logs(crashloop: FixtureCluster) -> None:
    path = "/api/v1/namespaces/payments/pods/payment-api-7f9c8d6b5-x7k2m/log"
    with httpx.Client(base_url=crashloop.url) as client:
        current = client.get(path, params={"container": "payment-api"})
        assert current.status_code == 200
        assert current.headers["content-type"].startswith("text/plain")
        assert "DATABASE_URL is not set" in current.text
        assert "09:57:41" in current.text

        default_container = client.get(path)  # single-container pod: container is optional
        assert default_container.text == current.text

        previous = client.get(path, params={"container": "payment-api", "previous": "true"})
        assert "09:52:30" in previous.text and "09:57:41" not in previous.text

        tail = client.get(path, params={"tailLines": 2})
        lines = tail.text.splitlines()
        assert len(lines) == 2 and lines[-1].endswith("(is DATABASE_URL set?)")

        no_previous = client.get(
            "/api/v1/namespaces/payments/pods/payments-db-0/log", params={"previous": "true"}
        )
        assert no_previous.status_code == 400
        assert "previous terminated container" in no_previous.json()["message"]

        bad_container = client.get(path, params={"container": "sidecar"})
        assert bad_container.status_code == 400
        missing_pod = client.get("/api/v1/namespaces/payments/pods/nope/log")
        assert missing_pod.status_code == 404


def test_multi_container_pod_log_needs_container() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "two", "namespace": "default"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
    }
    scenario = Scenario.from_documents([pod], logs={"default/two/b": "hello from b\n"})
    with FixtureCluster(scenario) as cluster, httpx.Client(base_url=cluster.url) as client:
        path = "/api/v1/namespaces/default/pods/two/log"
        response = client.get(path)
        assert response.status_code == 400
        assert "choose one of: [a b]" in response.json()["message"]
        assert client.get(path, params={"container": "b"}).text == "hello from b\n"
        assert client.get(path, params={"container": "a"}).text == ""


# Errors, reviews and writes ----------------------------------------------------------


def test_not_found_is_a_status_object(api: httpx.Client) -> None:
    response = api.get("/api/v1/namespaces/billing/pods/nope")
    assert response.status_code == 404
    status = response.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "NotFound", 404)
    assert status["message"] == 'pods "nope" not found'
    assert status["details"] == {"name": "nope", "kind": "pods"}

    custom = api.get("/apis/billing.example.com/v1/namespaces/billing/invoices/nope").json()
    assert custom["message"] == 'invoices.billing.example.com "nope" not found'
    for path in ("/nonsense", "/api/v1/gizmos", "/apis/nope.example.com/v1", "/apis/nope"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["kind"] == "Status"


def test_watch_returns_an_empty_stream(api: httpx.Client) -> None:
    response = api.get("/api/v1/pods", params={"watch": "true", "timeoutSeconds": "0"})
    assert response.status_code == 200 and response.content == b""


def test_access_reviews_are_allowed_reads(cluster: FixtureCluster, api: httpx.Client) -> None:
    before = len(cluster.write_requests)
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}},
    }
    response = api.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review)
    assert response.status_code == 201
    assert response.json()["status"]["allowed"] is True
    assert response.json()["spec"] == review["spec"]
    protobuf = api.post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        content=b"k8s\x00\n\x1e\n\x19authorization.k8s.io/v1\x12\x17SelfSubjectAccessReview",
        headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert protobuf.status_code == 201 and protobuf.json()["status"]["allowed"] is True
    rules = api.post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", json={})
    assert rules.status_code == 201
    assert len(cluster.write_requests) == before


def test_writes_are_refused_and_recorded(crashloop: FixtureCluster) -> None:
    pod = "/api/v1/namespaces/payments/pods/payment-api-7f9c8d6b5-x7k2m"
    with httpx.Client(base_url=crashloop.url) as client:
        deleted = client.delete(pod)
        patched = client.patch(
            "/apis/apps/v1/namespaces/payments/deployments/payment-api",
            content=json.dumps({"spec": {"replicas": 0}}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        created = client.post("/api/v1/namespaces/payments/configmaps", json={"data": {}})
        replaced = client.put(pod, json={})
        still_there = client.get(pod)
    for response in (deleted, patched, created, replaced):
        assert response.status_code == 405
        assert response.json()["kind"] == "Status"
        assert response.json()["reason"] == "MethodNotAllowed"
    assert still_there.status_code == 200
    writes = [(r.method, r.path, r.status) for r in crashloop.write_requests]
    assert writes == [
        ("DELETE", pod, 405),
        ("PATCH", "/apis/apps/v1/namespaces/payments/deployments/payment-api", 405),
        ("POST", "/api/v1/namespaces/payments/configmaps", 405),
        ("PUT", pod, 405),
    ]


def test_requests_are_recorded(cluster: FixtureCluster, api: httpx.Client) -> None:
    api.get("/api/v1/pods", params={"labelSelector": "app=status-page"}, headers={"Accept": TABLE})
    recorded = cluster.requests[-1]
    assert (recorded.method, recorded.path, recorded.status) == ("GET", "/api/v1/pods", 200)
    assert recorded.query == "labelSelector=app%3Dstatus-page"
    assert recorded.accept == TABLE and recorded.time > 0


# Kubeconfig, scenarios, CLI ----------------------------------------------------------


def test_write_kubeconfig(cluster: FixtureCluster, tmp_path: Path) -> None:
    path = cluster.write_kubeconfig(tmp_path / "nested" / "kubeconfig", namespace="billing")
    config = yaml.safe_load(path.read_text())
    assert config["kind"] == "Config"
    assert config["clusters"][0]["cluster"] == {"server": cluster.url}
    assert cluster.url.startswith("http://127.0.0.1:")
    context = config["contexts"][0]
    assert config["current-context"] == context["name"]
    assert context["context"]["namespace"] == "billing"
    assert config["users"][0]["user"] == {}  # no credentials


@pytest.mark.parametrize("name", ["stuck-namespace", "crashloop-pod", "pending-pod"])
def test_example_scenarios_are_complete(name: str) -> None:
    folder = SCENARIOS / name
    scenario = load_scenario(folder)
    assert scenario.reference_time.isoformat() == "2025-06-02T10:00:00+00:00"
    assert scenario.alert is not None
    assert {"alert_type", "severity", "environment", "cluster", "namespace", "message"} <= set(
        scenario.alert
    )
    expected = scenario.expected
    assert expected["alert_type"] == scenario.alert["alert_type"]
    assert expected["root_cause"] and expected["key_facts"] and expected["remediation"]
    # every fact a good analysis must mention is discoverable from the cluster
    corpus = "".join(p.read_text() for p in folder.glob("*.yaml"))
    for fact in expected["must_mention"]:
        assert fact in corpus, fact
    if runbook := scenario.alert.get("runbook"):  # repo-relative or in examples/runbooks
        assert (REPO / runbook).is_file() or (REPO / "examples" / "runbooks" / runbook).is_file()
    FixtureCluster(scenario)  # objects are consistent (no duplicates, known kinds)


def test_load_scenario_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"no cluster\.yaml"):
        load_scenario(tmp_path)
    (tmp_path / "cluster.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {}\n")
    with pytest.raises(ScenarioError, match=r"metadata\.name"):
        load_scenario(tmp_path)
    (tmp_path / "cluster.yaml").write_text(
        "apiVersion: v1\nkind: PodList\n"
        "items:\n- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n"
    )
    (tmp_path / "logs.yaml").write_text("default/p: nope\n")
    with pytest.raises(ScenarioError, match="bad key"):
        load_scenario(tmp_path)
    (tmp_path / "logs.yaml").write_text("default/p/c/previous: old\n")
    scenario = load_scenario(tmp_path)
    assert [o["kind"] for o in scenario.objects] == ["Pod"]  # List documents are expanded
    assert scenario.log("default", "p", "c", previous=True) == "old"


def test_cli_serves_a_scenario(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    command = [
        sys.executable,
        "-m",
        "server.fixture_cluster",
        str(SCENARIOS / "pending-pod"),
        "--kubeconfig",
        str(kubeconfig),
        "--quiet",
    ]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            pods = httpx.get(f"{url}/api/v1/namespaces/analytics/pods", timeout=5).json()
            assert "report-generator-5c7d9b8f6-9tq4z" in _names(pods["items"])
        finally:
            process.terminate()
    assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == url
