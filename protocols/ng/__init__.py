"""RTPEngine ng control protocol: bencode and the cookie framing."""
