"""SMPP 3.4 (with the SMPP 5.0 parts customers expect): codec, framing, session, text."""
