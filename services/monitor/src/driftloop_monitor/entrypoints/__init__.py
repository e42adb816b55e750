"""The monitor's entrypoints: the HTTP app and the faust stream processor."""
