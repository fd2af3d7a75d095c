"""The HTTP API: FastAPI routers, thin over the application."""
