"""The consumers of a secret as the engine sees them: read what they hold, hand them a new secret."""
