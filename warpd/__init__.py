"""warpd: an operator's SMS and SIP trunking edge in one asyncio process."""

__version__ = "0.1.0"
