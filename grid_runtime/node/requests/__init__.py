"""Requests of every kind (access now; release and budget later): one table, one state machine."""
