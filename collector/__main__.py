"""``python -m collector`` is the ``genai-collector`` command."""

from collector.cli import main

# Guarded: worker processes import the main module again (as __mp_main__), and must not run the command.
if __name__ == "__main__":
    raise SystemExit(main())
