"""irl: internal reinforcement learning in JAX."""
