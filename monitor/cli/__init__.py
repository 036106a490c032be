"""The `forewarn` commands: run, check-config, demo and the operator's commands."""
