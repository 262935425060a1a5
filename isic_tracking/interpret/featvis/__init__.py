"""interpret/featvis."""
