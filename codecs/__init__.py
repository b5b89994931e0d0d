"""forecourt.codecs."""
