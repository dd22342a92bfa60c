"""Shared fixtures for flowtel's own test-suite."""

from __future__ import annotations
