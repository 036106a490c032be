"""The running process: scheduler loop, probe workers, metrics, logs, systemd, locks."""
