"""Notifications: the optional per-node webhook that receives each request decision, signed with HMAC."""
