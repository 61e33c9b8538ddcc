"""Every parameter initialiser gives strongly typed float32 leaves. A weakly typed leaf (what
`jnp.full(n, python_float)` makes) turns strong after its first optimiser update, so a jitted
training chunk is traced and compiled again on its second and third calls (measured: two
extra 12-second compilations of every RL run at the small preset)."""

import jax
import jax.numpy as jnp
import pytest

from irl.control import compile as compile_
from irl.control import linear, metacontroller
from irl.models import hawk
from irl.models import transformer as tf
from irl.rl import policy

INITS = {
    "transformer": lambda k: tf.init(k, tf.TransformerConfig(obs_size=20, n_layers=1, width=16, n_heads=2, head_dim=8,
                                                             mlp_width=16)),
    "hawk": lambda k: hawk.init(k, hawk.HawkConfig(obs_size=20, n_layers=1, width=16, n_heads=2, mlp_width=16)),
    "controller": lambda k: linear.init(k, linear.ControllerConfig(width=16, code_dim=4, rank=2)),
    "metacontroller": lambda k: metacontroller.init(k, metacontroller.MetacontrollerConfig(width=16)),
    "compile": lambda k: compile_.init(k, compile_.CompileConfig(width=16, obs_size=20)),
    "policy": lambda k: policy.init(k, policy.PolicyConfig(input_width=16, latent_dim=8, width=16, n_heads=2,
                                                           mlp_width=16)),
}


@pytest.mark.parametrize("name", list(INITS))
def test_initial_params_are_strongly_typed_float32(name):
    leaves = jax.tree_util.tree_leaves_with_path(INITS[name](jax.random.key(0)))
    bad = [jax.tree_util.keystr(path) for path, x in leaves if x.weak_type or x.dtype != jnp.float32]
    assert not bad, f"weakly typed or not float32: {bad}"
