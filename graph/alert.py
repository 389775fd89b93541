"""The alert model: what monitoring sends us, validated at the edge of the system."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from graph.masking import Masker

_SHORT = 256
_LONG = 16_384


class Alert(BaseModel):
    """A monitoring alert, as the seed design defines it.

    Unknown extra fields are kept with the alert (they reach the model as context).
    """

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    alert_type: str = Field(min_length=1, max_length=_SHORT, description="Selects the agent.")
    severity: str = Field(default="warning", max_length=_SHORT)
    environment: str = Field(default="", max_length=_SHORT)
    cluster: str = Field(default="", max_length=1024, description="Cluster API URL or name.")
    namespace: str = Field(default="", max_length=_SHORT)
    pod: str | None = Field(default=None, max_length=_SHORT)
    message: str = Field(min_length=1, max_length=_LONG, description="What the alert says.")
    runbook: str | None = Field(
        default=None, max_length=2048, description="Runbook URL (GitHub) or a file name."
    )
    context: str | None = Field(default=None, max_length=_LONG)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def to_state(self) -> dict[str, Any]:
        """The JSON-friendly form kept in the graph state, with secrets masked."""
        masked, _ = Masker().mask_value(self.model_dump(mode="json"))
        return dict(masked)
