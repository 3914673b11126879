"""posventa."""
