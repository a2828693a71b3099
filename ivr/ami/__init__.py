"""AMI: a sans-I/O codec (framing), an asyncio client, an emulator faithful to Asterisk 22, and transfers."""
