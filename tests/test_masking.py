"""Secret masking: what is masked, what is left alone, and the counts."""

from __future__ import annotations

import random

import pytest

from graph import masking
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


def _whole_text_reference(text: str) -> tuple[str, int]:
    """Every built-in pattern run over the whole text, in order: what masking did before
    line-local patterns were run on the lines that hold their keywords only."""
    total = 0
    if "secret" in text.lower() and masking._SECRET_KIND.search(text):
        text, total = masking._mask_secret_objects(text)
    for rule in masking._RULES:
        text, count = rule.pattern.subn(rule.replacement, text)
        total += count
    return text, total


FRAGMENTS = [
    "password",
    "PASSWD",
    "pwd",
    "secret",
    "Token",
    "api_key",
    "apikey",
    "access-key",
    "client_secret",
    "credentials",
    "auth",
    "session_key",
    "client-key-data",
    "id-token",
    "DB_",
    "_URL",
    ".",
    "-",
    "_",
    "x",
    "abc123",
    "bearer",
    "Basic",
    "[MASKED]",
    " ",
    "\t",
    "\n",
    "\n  ",
    ":",
    "=",
    ": ",
    " = ",
    '"',
    "'",
    ",",
    "}",
    "{",
    "]",
    "://",
    "user:pw@",
    "https://",
    "@host",
    "eyJhbGciOiJIUzI1",
    ".eyJzdWIiOiIxMjM0",
    ".sig_part_xyz",
    "AKIAIOSFODNN7EXAMPLE",
    "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "xoxb-1234567890",
    "ghp_" + "a" * 32,
    "AccountKey=",
    "SharedAccessSignature=",
    "?sig=",
    "&sig=",
    "value:",
    "name: ",
    "verylongvalue0123456789",
    "- name: DB_PASSWORD",
    "\n  value: ",
    '{"name": "API_TOKEN",',
    '\n "value": "',
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
]


def test_lines_with_keywords_are_masked_as_the_whole_text_was():
    rng = random.Random(20261125)
    for _ in range(3000):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 40)))
        assert Masker().mask_text(text) == _whole_text_reference(text), text


def test_keyword_lines_in_long_cluster_output_are_masked():
    lines = [f"  uid: {i:08x}-7a5e-83a2-e5e9-729d9fb904e1" for i in range(600)]
    lines[100] = "  Mounts: /var/run/secrets/kubernetes.io/serviceaccount (ro)"
    lines[400] = "  DB_PASSWORD: hunter2-longer"
    lines[599] = "  api_token=abcdef"
    text = "\n".join(lines)
    masked, count = Masker().mask_text(text)
    assert (masked, count) == _whole_text_reference(text)
    assert count == 2 and "hunter2" not in masked and "abcdef" not in masked
    assert masked.count("\n") == 599
