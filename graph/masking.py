"""Secret masking for everything that comes from outside (tool results, alert payloads):
applied before a value enters the graph state, so the model, the stream, the checkpoints,
the index and the logs never see it. Counts what it masked, never what the values were."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import ahocorasick_rs

MASK = "[MASKED]"

_KEYWORDS = (
    r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|credentials?|auth|session[_-]?key|"
    r"client-key-data|client-certificate-data|id-token|refresh-token)"
)


class _Rule(NamedTuple):
    """A built-in pattern and how it is run."""

    pattern: re.Pattern[str]
    replacement: str
    needles: tuple[str, ...]
    """Lower-case substrings one of which any match contains: a text without them is not
    scanned (most tool output contains no secret-like keyword)."""
    line_local: bool
    """No part of the pattern can match a line break: it is run on the lines holding one of
    its needles only, not on the whole text. (The key-value pattern backtracks through
    every word of a text, about 7 ms for 20 kB of cluster output, and one "secrets" in a
    volume mount's path set it off.)"""


_KEYWORD_PARTS = ("passw", "pwd", "secret", "token", "key", "credential", "auth", "certificate")

_RULES: tuple[_Rule, ...] = (
    # PEM private keys (RSA, EC, OPENSSH, PKCS#8, ...), whole block (spans lines)
    _Rule(
        re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S),
        f"-----BEGIN \\1PRIVATE KEY-----{MASK}-----END \\1PRIVATE KEY-----",
        ("private key-----",),
        line_local=False,
    ),
    # JWTs
    _Rule(
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        MASK,
        ("eyj",),
        line_local=True,
    ),
    # Authorization headers and bearer tokens ("Bearer", then any white space)
    _Rule(
        re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]{8,}=*"),
        f"\\1\\2{MASK}",
        ("bearer", "basic"),
        line_local=False,
    ),
    # passwords in URLs: scheme://user:password@host
    _Rule(
        re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@\"']+:)[^\s@/\"']+(@)"),
        f"\\1{MASK}\\2",
        ("://",),
        line_local=True,
    ),
    # AWS access key ids; Google API keys; Slack and GitHub tokens
    _Rule(re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK, ("akia", "asia"), line_local=True),
    _Rule(re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), MASK, ("aiza",), line_local=True),
    _Rule(re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"), MASK, ("xox",), line_local=True),
    _Rule(
        re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
        MASK,
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        line_local=True,
    ),
    # Azure connection strings and SAS signatures
    _Rule(
        re.compile(
            r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password)=([^;\s\"']+)"
        ),
        f"\\1={MASK}",
        ("accountkey", "sharedaccess", "password="),
        line_local=True,
    ),
    _Rule(re.compile(r"(?i)([?&]sig=)[^&\s\"']+"), f"\\1{MASK}", ("sig=",), line_local=True),
    # env list entries: - name: DB_PASSWORD \n value: xyz   (YAML) and {"name": .., "value": ..}
    _Rule(
        re.compile(
            rf"(?im)(name:\s*[\"']?[A-Z0-9_.-]*{_KEYWORDS}[A-Z0-9_.-]*[\"']?\s*\n\s*value:\s*)"
            r"(?![\"']?\[MASKED\])([^\n]+)"
        ),
        f"\\1{MASK}",
        _KEYWORD_PARTS,
        line_local=False,
    ),
    _Rule(
        re.compile(
            rf"(?i)(\"name\"\s*:\s*\"[A-Z0-9_.-]*{_KEYWORDS}[A-Z0-9_.-]*\"\s*,\s*\"value\"\s*:"
            r"\s*\")[^\"]*(\")"
        ),
        f"\\1{MASK}\\2",
        _KEYWORD_PARTS,
        line_local=False,
    ),
    # key: value / key=value / "key": "value" for secret-looking keys
    _Rule(
        re.compile(
            rf"(?i)([\"']?\b[A-Z0-9_.-]*{_KEYWORDS}[A-Z0-9_.-]*[\"']?[ \t]*[:=][ \t]*[\"']?)"
            r"(?!\[MASKED\]|(?:bearer|basic)\b)([^\s\"',}{\]]{3,})"
        ),
        f"\\1{MASK}",
        _KEYWORD_PARTS,
        line_local=True,
    ),
)

_NEEDLES = tuple(sorted({needle for rule in _RULES for needle in rule.needles}))


@functools.cache
def _needle_search() -> ahocorasick_rs.AhoCorasick:
    return ahocorasick_rs.AhoCorasick(_NEEDLES)


def _needles_in(low: str) -> set[str]:
    """The rules' needles found in `low`, in one pass of an Aho-Corasick automaton over
    the text (overlapping matches: "key" is found inside "accountkey" too). Most text holds
    none; one substring search per needle took 8 times as long on cluster output."""
    return set(_needle_search().find_matches_as_strings(low, overlapping=True))


# A secret-looking key of a JSON-like value (an alert's field): its value is masked whole.
_SECRET_KEY = re.compile(rf"(?i)[A-Z0-9_.-]*{_KEYWORDS}[A-Z0-9_.-]*")

# Kubernetes Secret objects: every value under data: / stringData:
_SECRET_KIND = re.compile(r"(?m)^\s*kind:\s*Secret\s*$|\"kind\"\s*:\s*\"Secret\"")
_YAML_DATA = re.compile(
    r"(?m)^(?P<indent>[ \t]*)(?:data|stringData):[ \t]*\n"
    r"(?P<body>(?:(?P=indent)[ \t]+[^\n]*\n?)+)"
)
_YAML_ITEM = re.compile(r"(?m)^([ \t]+[^:\n]+:[ \t]*)(?!\[MASKED\])(\S[^\n]*)$")
_JSON_DATA = re.compile(r"(\"(?:data|stringData)\"\s*:\s*\{)([^{}]*)(\})")
_JSON_ITEM = re.compile(r"(\"[^\"]+\"\s*:\s*\")(?!\[MASKED\])[^\"]*(\")")


@dataclass(frozen=True)
class Masker:
    """Masks secrets in text; `patterns` are extra, user-configured regular expressions
    (the whole match is masked, or group 1 when the pattern has a group)."""

    patterns: tuple[re.Pattern[str], ...] = field(default_factory=tuple)

    @classmethod
    def with_patterns(cls, patterns: Iterable[str]) -> Masker:
        return cls(tuple(re.compile(p) for p in patterns))

    def mask_text(self, text: str) -> tuple[str, int]:
        total = 0
        low = text.lower()
        if "secret" in low and _SECRET_KIND.search(text):
            text, count = _mask_secret_objects(text)
            low = text.lower()
            total += count
        found = _needles_in(low)
        for rule in _RULES:
            if found.isdisjoint(rule.needles):
                continue
            if rule.line_local and text.isascii():  # `low` has `text`'s positions
                text, count = _subn_lines(rule, text, low)
            else:
                text, count = rule.pattern.subn(rule.replacement, text)
            if count:
                low = text.lower()
                found = _needles_in(low)  # masking can remove a needle (never add one)
                total += count
        for pattern in self.patterns:
            text, count = pattern.subn(_mask_group if pattern.groups else MASK, text)
            total += count
        return text, total

    def mask_value(self, value: Any) -> tuple[Any, int]:
        """Mask every string inside a JSON-like value (alert payloads)."""
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, dict):
            out, total = {}, 0
            for key, item in value.items():
                if isinstance(item, str) and _SECRET_KEY.fullmatch(str(key)):
                    out[key], total = MASK, total + 1
                    continue
                out[key], count = self.mask_value(item)
                total += count
            return out, total
        if isinstance(value, list):
            items = [self.mask_value(item) for item in value]
            return [v for v, _ in items], sum(c for _, c in items)
        return value, 0


def _subn_lines(rule: _Rule, text: str, low: str) -> tuple[str, int]:
    """`rule.pattern.subn(rule.replacement, text)` for a line-local rule, searching only
    the lines holding one of its needles (found in `low`, `text` in lower case, same
    positions). A line searched as a string of its own matches as in the whole text: its
    ends are line breaks there, and neither a line break nor a string's end is a word
    character."""
    starts: set[int] = set()
    for needle in rule.needles:
        at = low.find(needle)
        while at != -1:
            starts.add(low.rfind("\n", 0, at) + 1)
            at = low.find(needle, at + len(needle))
    pieces: list[str] = []
    done = total = 0
    for start in sorted(starts):
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        line, count = rule.pattern.subn(rule.replacement, text[start:end])
        if count:
            pieces += (text[done:start], line)
            done, total = end, total + count
    if not total:
        return text, 0
    pieces.append(text[done:])
    return "".join(pieces), total


def _mask_group(match: re.Match[str]) -> str:
    start, end = match.span(1)
    whole = match.group(0)
    offset = match.start(0)
    return whole[: start - offset] + MASK + whole[end - offset :]


def _mask_secret_objects(text: str) -> tuple[str, int]:
    total = 0

    def yaml_body(match: re.Match[str]) -> str:
        nonlocal total
        body, count = _YAML_ITEM.subn(f"\\1{MASK}", match.group("body"))
        total += count
        return match.group(0)[: match.start("body") - match.start(0)] + body

    def json_body(match: re.Match[str]) -> str:
        nonlocal total
        body, count = _JSON_ITEM.subn(f"\\1{MASK}\\2", match.group(2))
        total += count
        return match.group(1) + body + match.group(3)

    text = _YAML_DATA.sub(yaml_body, text)
    text = _JSON_DATA.sub(json_body, text)
    return text, total
