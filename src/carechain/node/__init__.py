"""carechain node."""
