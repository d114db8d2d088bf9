"""Project tools that are not deployed: running the system locally, the demo and the benchmark."""
