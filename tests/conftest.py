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


# The few files that take minutes (end-to-end pipelines, brax PPO) start first, so that the two
# workers of `make test` (whole files each) finish together instead of one running them alone
# at the end: longest first is the classic rule for sharing jobs between machines.
SLOW_FILES = ("test_ant_pipeline.py", "test_pipeline.py", "test_ant_expert.py", "test_rl_stage.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return SLOW_FILES.index(name) if name in SLOW_FILES else len(SLOW_FILES)

    items.sort(key=rank)  # stable: tests keep their order inside a file
