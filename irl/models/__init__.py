"""Base sequence models with a first-class layer split."""
