"""Entry point for ``python -m monitor``."""

from monitor.cli.main import main

raise SystemExit(main())
