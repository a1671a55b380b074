"""Grants and denies on tensors and datasets, and how they resolve to a user's effective level."""
