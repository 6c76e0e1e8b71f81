"""The systems warpd is measured against, each installed (or found) and run by the suite.

Every peer module has a class with the same four steps: ``install()`` (find
it, or install it: Debian packages with apt-get, Python peers into their own
venv under ``~/.cache/warpd-bench``), ``start()`` (on loopback, on ports it
picks, with a run directory under ``bench/out/``), ``health()`` (does it
answer its protocol) and ``stop()`` (only what it started).
"""
