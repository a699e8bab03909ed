"""carechain api."""
