"""The HTTP edge: FastAPI app with OpenAI's chat completions surface, errors in OpenAI's shape."""
