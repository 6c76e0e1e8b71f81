"""The SMS core: one acceptance path for SMPP and HTTP, the durable queue and
its dispatcher, receipts, MO and the store-and-forward of what customers are owed."""
