"""monitor/model."""
