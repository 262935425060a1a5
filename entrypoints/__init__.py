"""Thin entry points: parse args, call the package, log to MLflow."""
