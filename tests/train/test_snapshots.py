"""Hidden-state snapshots stay finite (issue 15): float16 where it keeps every value (half the memory),
float32 where a value lies past float16's range (--lr 10 used to leave 81 % inf in h2)."""

import numpy as np

from ffnlp_core.train.evaluate import F16_MAX, compact


def test_ordinary_hidden_states_are_kept_as_float16():
    h = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    out = compact(h)
    assert out.dtype == np.float16 and np.allclose(out, h, atol=1e-2)


def test_hidden_states_past_float16s_range_stay_float32_and_finite():
    h = np.array([[1.0, 2.0 * F16_MAX], [-3.0 * F16_MAX, 0.5]], np.float32)
    with np.errstate(over="ignore"):
        assert np.isinf(h.astype(np.float16)).sum() == 2  # what the old cast did
    out = compact(h)
    assert out.dtype == np.float32 and np.isfinite(out).all() and out[0, 1] == h[0, 1]
