"""The LLM proxy: a Starlette app in front of OpenAI, Anthropic and OpenAI-compatible APIs."""
