"""The system benchmark harness: processes, CPU and memory accounting, results, the report."""
