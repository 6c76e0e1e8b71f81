"""Stopgap SMPP simulator and load generator for the system benchmarks.

The SMSC stood in for ``warpd sim-smsc`` until it landed and stays selectable
(``WARPD_BENCH_SMSC=stopgap``, about 3x faster per message); the ESME is the
scenarios' load generator (receipts per second, idle binds). bench/loadgen.py
is the one place that chooses which runs.
Both are thin asyncio glue over protocols.smpp's codec and framing, and both
run as their own process so the harness can count each one's CPU.
"""
