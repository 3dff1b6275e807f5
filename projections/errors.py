"""The one exception root of the projections package."""

from __future__ import annotations


class ProjectionError(Exception):
    """A read model could not be migrated, projected, rebuilt or queried."""


class FoldError(ProjectionError):
    """An event that cannot become a row; `code` is its machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class MigrationError(ProjectionError):
    """A migration failed, or an applied one was changed afterwards."""


class ProjectorBusyError(ProjectionError):
    """Another process already projects (or rebuilds) the same read model."""
