"""The rehearsal of each cloud's machines on this machine (issue 12): see tests/rehearsal/machines.py."""
