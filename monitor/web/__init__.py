"""monitor/web."""
