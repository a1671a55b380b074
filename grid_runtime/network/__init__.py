"""The Network: an optional service above Nodes (docs/network.md). Nodes associate with it and push the metadata
of their tensors and datasets; its users search that catalogue across every Node in one place.

It has its own app, database, migrations, users and roles, and shares the Node's core (``grid_runtime.core``):
settings, database, security, errors, capabilities. Nothing here imports ``grid_runtime.node``, nor the reverse.
"""
