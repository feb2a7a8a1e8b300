"""lorag eval: inputs, scoring, reports and the runner against a fake server."""
