"""Benchmarks and load generators (not tests): see REPORT.md."""
