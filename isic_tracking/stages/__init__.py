"""One folder per stage: its runner (the MLflow side) and the helpers only it uses."""
