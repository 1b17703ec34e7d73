"""prompt-harness: evaluate prompts across models, replay offline, compare with honest statistics, gate CI."""

__version__ = "0.1.0"
