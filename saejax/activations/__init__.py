"""A language model's activations on disk (``cache.write``), from text (``text.documents``)."""
