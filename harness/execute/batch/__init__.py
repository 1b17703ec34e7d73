"""Batch execution: the trials that need a call go to the provider's Batch API (or any engine reading the
OpenAI batch format) instead of one request each, at the batch price and outside per-minute rate limits.

Modules in data-flow order: ``requests`` (trials as batch request lines, spooled into files within the
limits), ``state`` (``batches.json``: what was submitted, saved before each step), ``submit`` (upload and
submit at most once per chunk), ``poll`` (wait with backoff and progress, fetch the answer files),
``ingest`` (answers through the live call path into the run and the cassette), ``runner`` (the phase the
pipeline drives), ``external`` (export/import for other engines). See docs/batch.md.
"""
