"""Federated learning in the SDK: ``gridctl.fl.Client`` takes part in a process with local data (docs/fl.md)."""

from __future__ import annotations

from gridctl.sdk.fl import Client, CycleReport, FLProcesses, load_local_data

__all__ = ["Client", "CycleReport", "FLProcesses", "load_local_data"]
