"""Stopgap SMPP simulator and load generator for the system benchmarks.

These stand in for ``warpd sim-smsc`` and ``warpd sim-esme`` (warpd/sim/, issue
8) until those land; bench/loadgen.py is the one place that chooses which runs.
Both are thin asyncio glue over protocols.smpp's codec and framing, and both
run as their own process so the harness can count each one's CPU.
"""
