"""flowtel._core."""
