"""``python -m harness.testing.fault_server``: serve until SIGTERM/SIGINT; see ``process.main``."""

from .process import main

if __name__ == "__main__":
    raise SystemExit(main())
