"""carechain crypto."""
