"""Compose configs/ and recipes/ with Hydra and validate them against typed schemas."""
