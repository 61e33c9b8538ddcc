"""Expert policies that generate the pretraining data."""

from irl.experts.grid_expert import grid_expert_action, optimal_actions, safe_actions

__all__ = ["grid_expert_action", "optimal_actions", "safe_actions"]
