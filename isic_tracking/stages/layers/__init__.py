"""``layers``: how each layer of a fine-tuned model differs from its base, and what it matters."""
