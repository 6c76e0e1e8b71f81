"""SMPP glue: the customer listener and the carrier connectors, over protocols.smpp sessions."""
