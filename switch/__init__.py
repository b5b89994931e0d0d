"""forecourt.switch."""
