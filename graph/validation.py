"""One way to say what is wrong with validated input: `path.to.field: message; ...`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """Pydantic (or FastAPI) validation errors as one line naming each bad field."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
        for error in errors
    )
