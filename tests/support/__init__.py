"""Test-only helpers: real OTLP receivers, fault servers and shared corpora."""
