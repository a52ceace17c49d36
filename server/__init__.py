"""millwatch server: REST API, WebSocket live updates and the map page."""
