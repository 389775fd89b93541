"""Secret masking: what is masked, what is left alone, and the counts."""

from __future__ import annotations

import pytest

from graph.alert import Alert
from graph.masking import MASK, Masker

SECRETS = [
    (
        "kind: Secret\nmetadata:\n  name: db\ndata:\n  password: c3VwZXJzZWNyZXQ=\n"
        "  user: YWRtaW4=\ntype: Opaque\n",
        ["c3VwZXJzZWNyZXQ=", "YWRtaW4="],
    ),
    (
        '{"kind": "Secret", "stringData": {"password": "plain-pass", "user": "root"}}',
        ["plain-pass", "root"],
    ),
    ("env:\n- name: DB_PASSWORD\n  value: hunter2\n", ["hunter2"]),
    ("DATABASE_URL=postgres://app:s3cr3t-pw@db:5432/app", ["s3cr3t-pw"]),
    ("curl -H 'Authorization: Bearer abcdef1234567890xyz'", ["abcdef1234567890xyz"]),
    (
        "id_token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0",
        ["eyJzdWIiOiIxMjM0NTY3ODkwIn0"],
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
        ["b3BlbnNzaC1rZXk"],
    ),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", ["AKIAIOSFODNN7EXAMPLE"]),
    (
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
    ),
    (
        '"private_key_id": "8f2a9c1e4b7d", "key": "AIzaSyA1234567890abcdefghijklmnopqrstuv"',
        ["8f2a9c1e4b7d", "AIzaSyA1234567890abcdefghijklmnopqrstuv"],
    ),
    ("AccountName=x;AccountKey=Zm9vYmFyYmF6==;EndpointSuffix=core.windows.net", ["Zm9vYmFyYmF6=="]),
    ("https://acct.blob.core.windows.net/c?sv=2020&sig=abcDEF123%2B", ["abcDEF123%2B"]),
    (
        "users:\n- name: admin\n  user:\n    client-key-data: LS0tLS1CRUdJTi\n"
        "    token: kubeconfig-token-1",
        ["LS0tLS1CRUdJTi", "kubeconfig-token-1"],
    ),
]


@pytest.mark.parametrize(("text", "planted"), SECRETS)
def test_secrets_are_masked_and_counted(text: str, planted: list[str]):
    masked, count = Masker().mask_text(text)
    for value in planted:
        assert value not in masked
    assert MASK in masked
    assert count >= len(planted) or count >= 1


@pytest.mark.parametrize(
    "text",
    [
        "phase: Running\nrestartCount: 12\nreason: CrashLoopBackOff",
        "secretKeyRef:\n  key: url\n  name: payment-api-db",
        "WARN ignoring unknown setting DB_CONNECTION_STRING",
        "NAMESPACE   NAME   READY   STATUS",
    ],
)
def test_ordinary_cluster_output_is_left_alone(text: str):
    assert Masker().mask_text(text) == (text, 0)


def test_user_patterns_mask_the_match_or_its_group():
    masker = Masker.with_patterns([r"ACME-\d{6}", r"customer=(\w+)"])
    text, count = masker.mask_text("ticket ACME-123456 for customer=globex")
    assert text == f"ticket {MASK} for customer={MASK}"
    assert count == 2


def test_alert_payload_is_masked_before_it_enters_the_state():
    alert = Alert.model_validate(
        {
            "alert_type": "X",
            "message": "login failed for postgres://u:pw1234@db/x",
            "labels": {"api_token": "tok-123456", "team": "billing"},
        }
    )
    state = alert.to_state()
    assert "pw1234" not in str(state) and "tok-123456" not in str(state)
    assert state["labels"]["team"] == "billing"
