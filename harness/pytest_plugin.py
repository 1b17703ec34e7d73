"""pytest plugin: collects prompt-harness suites as gated test items (see docs/gating.md)."""
