"""Credentials: password hashes (SMPP users) and API keys (HTTP customers)."""
