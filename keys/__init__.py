"""forecourt.keys."""
