"""The HTTP and WebSocket routes of the server, one module per area; each is a thin layer."""
