"""The GCP target: config.py (defaults and names, no Pulumi), program.py and components.py (the Pulumi
program, imported only when a stack runs or a plan is made)."""
