import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from hypothesis import settings  # noqa: E402

# jitted code compiles once per shape; examples after the first are cheap, but keep them few.
settings.register_profile("irl", max_examples=40, deadline=None)
settings.load_profile("irl")
