"""The one shared training loop and the small pieces it calls."""
