"""carechain: a permissioned blockchain for healthcare and health finance."""

__version__ = "0.1.0"
