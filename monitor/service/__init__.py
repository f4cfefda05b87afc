"""monitor/service."""
