import jax
import jax.numpy as jnp
import numpy as np
import optax

from irl.analysis.probes import init_probes, probe_loss, segment_time


def test_a_probe_recovers_a_planted_linear_code():
    """Layer 1 of a synthetic stream carries the label along a random direction; layer 0 is
    noise. The probe must find the code at layer 1 and stay near chance at layer 0."""
    key = jax.random.key(0)
    n, width = 4096, 16
    labels = jax.random.randint(key, (n,), 0, 4)
    directions = jax.random.normal(jax.random.key(1), (4, width)) * 3.0
    noise = jax.random.normal(jax.random.key(2), (2, n, width))
    streams = noise.at[1].add(directions[labels])
    mask = jnp.ones(n, bool)
    probes = init_probes(jax.random.key(3), 1, width)
    optimizer = optax.adam(0.05)
    state = optimizer.init(probes)

    @jax.jit
    def step(probes, state):
        grads, _ = jax.grad(probe_loss, has_aux=True)(probes, streams, labels, mask)
        updates, state = optimizer.update(grads, state)
        return optax.apply_updates(probes, updates), state

    for _ in range(300):
        probes, state = step(probes, state)
    _, accuracy = probe_loss(probes, streams, labels, mask)
    assert accuracy[1] > 0.95 and accuracy[0] < 0.35


def test_segment_time_restarts_when_a_subgoal_begins():
    progress = jnp.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4])
    np.testing.assert_array_equal(segment_time(progress), [0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1])
    # the ant: a subgoal is one colour, so every visit begins one
    np.testing.assert_array_equal(segment_time(progress, 1), [0, 1, 2, 0, 1, 0, 1, 2, 0, 0, 1])
