"""Sans-I/O protocol layers: bytes in, typed values out.

Nothing below this package imports asyncio, sockets, a clock or anything from
``warpd``/``media``; ``tests/test_layering.py`` enforces it.
"""
