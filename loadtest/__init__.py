"""Load tests (locust) and benchmarks."""
