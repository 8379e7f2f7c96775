"""benchmarks/stability.py: the ceilings it reports for a motion of the whole map that keeps neighbourhoods."""
import numpy as np
from benchmark_support import load_benchmark


def load_stability():
    return load_benchmark("stability")


def test_steps_that_grow_with_the_distance_from_a_point_are_reached_by_a_similarity():
    st = load_stability()
    y = np.random.default_rng(0).normal(size=(800, 2))
    dh = 3.0 * np.linalg.norm(y - np.array([0.6, -0.4]), axis=1)   # a zoom about (0.6, -0.4)
    assert st.similarity_ceiling(dh, y) > 0.95


def test_steps_whose_log_is_harmonic_on_the_map_are_reached_by_a_conformal_motion():
    st = load_stability()
    y = np.random.default_rng(1).normal(size=(800, 2))
    z = y[:, 0] + 1j * y[:, 1]
    dh = np.exp(np.real(0.3 * z ** 2 - 0.5 * z))                    # |g(z)| for g = exp(0.3 z^2 - 0.5 z)
    assert st.conformal_ceiling(dh, y) > 0.99
    # a bowl (|dh| growing in every direction from the centre) is not harmonic, but a zoom reaches it
    bowl = np.linalg.norm(y, axis=1) ** 2
    assert st.similarity_ceiling(bowl, y) > 0.95


def test_steps_unrelated_to_the_map_get_no_ceiling():
    st = load_stability()
    rng = np.random.default_rng(2)
    y, dh = rng.normal(size=(800, 2)), rng.lognormal(size=800)
    assert st.similarity_ceiling(dh, y) < 0.2
    assert st.conformal_ceiling(dh, y) < 0.3
