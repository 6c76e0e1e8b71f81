"""SIP (RFC 3261 and friends): messages, SDP, transactions, dialogs, digest."""
