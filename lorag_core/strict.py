"""The base of every config model."""

from pydantic import BaseModel, ConfigDict


__all__ = ["StrictModel"]


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo fails at start-up, naming the field); immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
