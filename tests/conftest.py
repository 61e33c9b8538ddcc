import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests are bound by compilation, not by running: their programs are tiny and each compiles
# once. XLA's CPU backend at optimisation level 0 compiles them about 2.4x faster (measured on
# tests/test_internal_env.py and test_policy.py: 123 s -> 51 s). Results stay exact within a run;
# every equality a test checks compares programs built under the same flags.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

from hypothesis import settings  # noqa: E402

# jitted code compiles once per shape; examples after the first are cheap, but keep them few.
settings.register_profile("irl", max_examples=40, deadline=None)
settings.load_profile("irl")
