"""Media control: the asyncio RTPEngine ng client and its instance pool."""
