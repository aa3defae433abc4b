"""``python -m collector`` is the ``genai-collector`` command."""

from collector.cli import main

raise SystemExit(main())
