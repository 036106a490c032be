"""The daemon's HTTP faces: metrics and health now; status page and API later."""
