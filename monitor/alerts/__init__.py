"""monitor/alerts."""
