"""checks.yaml to a typed `Config`: loading, validation, errors that name file and line."""
