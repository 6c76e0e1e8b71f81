"""aiohttp: health, readiness and metrics now; the send, status and admin APIs grow here."""
