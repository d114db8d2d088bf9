"""Project tools that are not deployed: the API client and the demo."""
