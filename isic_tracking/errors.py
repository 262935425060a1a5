"""User-facing errors: each message says which file, row or name is wrong and what to do."""


class IsicInputError(ValueError):
    """Bad input from the user (data files, CSV columns, names, URIs). The message is the fix."""


class NonFiniteLossError(RuntimeError):
    """A training loss became NaN or Inf; the fold stops and is recorded as failed."""
