"""The tracking service's use cases: experiments, runs, search, logged models, artifacts."""
