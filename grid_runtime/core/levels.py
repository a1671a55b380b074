"""Access levels on a tensor or dataset. Each level includes the ones before it; ``deny`` is explicit."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    deny = "deny"  # nothing beyond seeing the metadata, whatever a lower-priority rule says
    search = "search"  # see the metadata
    compute = "compute"  # use as input to jobs and statistics
    download = "download"  # get the raw data

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Level) -> bool:
        """Whether holding this level is enough for an action that needs ``needed``."""
        return self.rank >= needed.rank


_RANK = {Level.deny: 0, Level.search: 1, Level.compute: 2, Level.download: 3}


class Visibility(StrEnum):
    public = "public"  # defaults to download for every authenticated user
    private = "private"  # defaults to search
