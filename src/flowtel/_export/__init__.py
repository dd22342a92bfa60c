"""flowtel._export."""
