"""Attacks on the privacy guarantee, run as an attacker would: through the public API or the SDK.

Each test asserts on what the attacker learns (the recovered value is not the true one, the field is absent,
the request is refused), never on how the Node closes the channel. docs/threat-model.md names each one.
"""
