import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests are bound by compilation, not by running: their programs are tiny and each compiles
# once. Two XLA CPU settings make compiling cheaper, as measured on this 2-core machine:
# - optimisation level 0 for the backend: about 2.4x faster (tests/test_internal_env.py and
#   test_policy.py: 123 s -> 51 s);
# - on top of it, the older fusion code generators instead of the MLIR fusion emitters:
#   tests/test_internal_env.py 30 s -> 24 s, the tiny grid pipeline 220 s -> 156 s.
# Results stay exact within a run; every equality a test checks compares programs built under
# the same flags.
TEST_XLA_FLAGS = {"xla_backend_optimization_level": "0", "xla_cpu_use_fusion_emitters": "false"}
for name, value in TEST_XLA_FLAGS.items():
    if name not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --{name}={value}").strip()

from hypothesis import settings  # noqa: E402

# jitted code compiles once per shape; examples after the first are cheap, but keep them few.
settings.register_profile("irl", max_examples=40, deadline=None)
settings.load_profile("irl")

# The two end-to-end pipelines take four to five minutes each, everything else about eight in
# all. `make test` hands out whole files in collection order (--no-loadscope-reorder), so these
# go first, one to each worker, and the other files fill in around them.
SLOWEST_FIRST = ("test_ant_pipeline.py", "test_pipeline.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOWEST_FIRST)))  # stable: the rest keep their order
