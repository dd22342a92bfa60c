"""Fault-matrix tests: the host application stays correct and fast whatever telemetry meets."""
