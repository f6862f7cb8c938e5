"""Domain exceptions for every layer of planqa.

They live in the bottom package (``corpus``) because every other package imports it and the
import direction is ``ui -> rag -> index -> corpus``. Only the CLI and the UI turn these into exit
codes and user-facing text; library code raises them with a message that names the value, the
limit and the fix.
"""

from __future__ import annotations


class PlanqaError(Exception):
    """Base class: anything a user can cause and fix. Never raised for programming errors."""

    exit_code = 1


class InputError(PlanqaError):
    """A query, option or argument that cannot be used as given."""

    exit_code = 2


class DocumentError(PlanqaError):
    """A document that cannot be read or decoded (binary, empty, unreadable)."""

    exit_code = 3


class IndexStoreError(PlanqaError):
    """The on-disk index is missing, damaged or built with other settings."""

    exit_code = 4


class ModelError(PlanqaError):
    """An embedding model that cannot be found, built or loaded."""

    exit_code = 5
