"""LaMDAgent: an LLM agent that builds and optimises post-training pipelines, tracked in MLflow."""

__version__ = "0.1.0"
