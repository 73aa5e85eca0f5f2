"""The agent: chat models, prompts, policies and memory."""
