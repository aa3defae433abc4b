"""genai-collector's core: config, component model, pipeline graph, receivers, admin endpoint and CLI."""

__version__ = "0.1.0"
