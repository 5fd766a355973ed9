"""Bundled default checkpoint (see docs/model-card.md for how it is trained)."""
