"""forecourt.simulators."""
