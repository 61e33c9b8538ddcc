"""Internal RL (SPEC.md section 7): the environment over latent codes (internal_env), the
abstract-action policy (policy), critic-free PPO (ppo), the raw-action baseline (raw_env),
and the learner that trains every method with seeds as batch axes (learner)."""
