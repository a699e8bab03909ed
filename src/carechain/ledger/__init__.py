"""carechain ledger."""
