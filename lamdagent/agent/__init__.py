"""The agent: chat backends, prompts, and the policies that pick the next action (the paper's LLM
agent, random, and the greedy and optuna search baselines)."""

from lamdagent.agent import hybrid, policies, search  # noqa: F401  (registration of every policy)
