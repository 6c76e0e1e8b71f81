"""Voice: SIP trunks, the B2BUA with media through RTPEngine, voice CDRs and charges."""
