"""secret-rotator: keeps Microsoft Entra ID app client secrets from ever expiring."""

__version__ = "0.1.0"
