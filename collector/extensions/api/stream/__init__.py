"""The live stream: ``events`` (what is sent), ``hub`` (pipeline tap → bounded clients), ``routes`` (SSE, WebSocket)."""
