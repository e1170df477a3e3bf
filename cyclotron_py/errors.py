"""Exceptions raised by cyclotron_py. Callers catch CyclotronError and print its message."""

from __future__ import annotations


class CyclotronError(Exception):
    """Base class: a problem a person can fix, described in the message."""


class CatalogError(CyclotronError):
    """The capability catalog (shipped or from inventory) is malformed."""


class ManifestError(CyclotronError):
    """A manifest file cannot be read or does not validate."""


class PolicyError(CyclotronError):
    """Policy variables from inventory are malformed."""


class PlanError(CyclotronError):
    """A plan cannot be built or contains unsafe data."""
