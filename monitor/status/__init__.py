"""The public snapshot behind the status page, badges, feed and public API."""
