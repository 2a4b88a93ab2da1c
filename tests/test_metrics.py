"""rho_hat statistics, dead units and explained variance against values worked by hand."""

import jax.numpy as jnp
import numpy as np
import pytest

from saejax import metrics

LN3, LN9, LN99, LN999 = np.log(3.0), np.log(9.0), np.log(99.0), np.log(999.0)

# A 2-3-2 network on two examples, with every sigmoid a ratio we can read off:
# s(0) = 1/2, s(ln 9) = 9/10, s(-ln 99) = 1/(1 + 99) = 0.01, s(-ln 999) = 1/(1 + 999) = 0.001.
X = jnp.array([[0.0, 1.0],
               [1.0, 0.0]])
W1 = jnp.array([[LN9, 0.0],   # unit 1: z = 0 on x1, ln 9 on x2 -> a2 = 0.5, 0.9
                [0.0, 0.0],   # unit 2: z = -ln 999 on both     -> a2 = 0.001
                [0.0, 0.0]])  # unit 3: z = -ln 99 on both      -> a2 = 0.01
B1 = jnp.array([0.0, -LN999, -LN99])
# rho_hat = the mean of a2 over the two examples.
RHO_HAT = [(0.5 + 0.9) / 2, 0.001, 0.01]  # = [0.7, 0.001, 0.01]


def hand_params(W2, b2):
    return {"W1": W1, "b1": B1, "W2": jnp.asarray(W2), "b2": jnp.asarray(b2)}


# Linear decoder: a3_1 = 1.25 a2_1 - 0.375 and a3_2 = -1.25 a2_1 + 1.375, so
# x1 = [0, 1]: a2_1 = 0.5 -> a3 = [0.25, 0.75];  x2 = [1, 0]: a2_1 = 0.9 -> a3 = [0.75, 0.25].
LINEAR = hand_params([[1.25, 0.0, 0.0], [-1.25, 0.0, 0.0]], [-0.375, 1.375])


@pytest.mark.parametrize("rho, dead", [
    (0.05, 1 / 3),  # threshold 0.1 * 0.05 = 0.005: only unit 2 (0.001) is dead; unit 3 (0.01) lives
    (0.2, 2 / 3),   # threshold 0.02: units 2 (0.001) and 3 (0.01) are dead; unit 1 (0.7) lives
    (0.005, 0.0),   # threshold 0.0005: every unit lives
])
def test_activation_stats_by_hand(rho, dead):
    got = metrics.activation_stats(LINEAR, X, rho, decoder="linear")
    np.testing.assert_allclose(got["rho_hat"], RHO_HAT, rtol=1e-12)
    np.testing.assert_allclose(got["rho_hat_mean"], (0.7 + 0.001 + 0.01) / 3, rtol=1e-12)  # 0.237
    np.testing.assert_allclose(got["rho_hat_min"], 0.001, rtol=1e-12)
    np.testing.assert_allclose(got["rho_hat_max"], 0.7, rtol=1e-12)
    # A mean of booleans: saejax returns it in float32, hence the looser tolerance.
    np.testing.assert_allclose(got["dead_fraction"], dead, rtol=1e-6)
    # Residual: (0.25^2 + 0.25^2) + (0.25^2 + 0.25^2) = 0.25. The column means of X are
    # [0.5, 0.5], so the total is 4 * 0.5^2 = 1, and 1 - 0.25 / 1 = 0.75.
    np.testing.assert_allclose(got["explained_variance"], 0.75, rtol=1e-12)


def test_dead_fraction_threshold_is_a_tenth_of_rho():
    rho_hat = jnp.array([0.0, 0.004, 0.006, 0.5])
    # rho = 0.05: threshold 0.005, so 0.0 and 0.004 are dead, 0.006 and 0.5 are not: 2/4.
    # (A threshold of rho itself would give 3/4, one of 0.01 rho = 0.0005 would give 1/4.)
    assert float(metrics.dead_fraction(rho_hat, 0.05)) == 0.5
    # rho = 0.2: threshold 0.02, three units below it (">" instead of "<" would give 1/4).
    assert float(metrics.dead_fraction(rho_hat, 0.2)) == 0.75
    # rho = 1e-3: threshold 1e-4, only the unit at 0.0 is dead.
    assert float(metrics.dead_fraction(rho_hat, 1e-3)) == 0.25


def test_explained_variance_uses_each_columns_mean():
    # Column means of x are [1, 2]: total = (0-1)^2 + (2-1)^2 + 0 + 0 = 2.
    # Residual = (0.5-0)^2 + 0 + 0 + (1.5-2)^2 = 0.5, so 1 - 0.5 / 2 = 0.75.
    # (Around the grand mean 1.5 the total would be 3 and the answer 5/6.)
    x = jnp.array([[0.0, 2.0], [2.0, 2.0]])
    a3 = jnp.array([[0.5, 2.0], [2.0, 1.5]])
    np.testing.assert_allclose(metrics.explained_variance(x, a3), 0.75, rtol=1e-12)
    assert float(metrics.explained_variance(x, x)) == 1.0  # a perfect reconstruction
    # Predicting each column's mean explains nothing.
    assert float(metrics.explained_variance(x, jnp.array([[1.0, 2.0], [1.0, 2.0]]))) == 0.0


def test_loss_recovered_by_hand():
    # zeroing the site costs 4 - 2 = 2 nats; the splice costs 2.5 - 2 = 0.5 of them: 1.5 / 2
    assert metrics.loss_recovered(clean=2.0, spliced=2.5, zero=4.0) == 0.75
    assert metrics.loss_recovered(2.0, 2.0, 4.0) == 1.0  # as good as the clean model
    assert metrics.loss_recovered(2.0, 4.0, 4.0) == 0.0  # as bad as zeros
    assert metrics.loss_recovered(2.0, 5.0, 4.0) == -0.5  # worse than zeros
    # zeroing the site costs nothing: no share to speak of (not a division by zero)
    assert np.isnan(metrics.loss_recovered(2.0, 2.5, 2.0))


def test_explained_variance_sigmoid_decoder_can_be_negative():
    # W2 = 0 and b2 = [ln 3, -ln 3] make a3 = [s(ln 3), s(-ln 3)] = [0.75, 0.25] for both examples.
    # Residual: x1 = [0, 1]: 0.75^2 + 0.75^2 = 1.125; x2 = [1, 0]: 0.25^2 + 0.25^2 = 0.125.
    # The total is 1 (as above), so 1 - 1.25 = -0.25: worse than predicting the mean.
    params = hand_params(jnp.zeros((2, 3)), [LN3, -LN3])
    got = metrics.activation_stats(params, X, 0.05)
    np.testing.assert_allclose(got["explained_variance"], -0.25, rtol=1e-12)
    np.testing.assert_allclose(got["rho_hat"], RHO_HAT, rtol=1e-12)  # the encoder is unchanged


def test_spatial_energy_share_by_hand():
    flat = np.zeros((2, 2, 3))
    flat[..., 0], flat[..., 2] = 0.5, -0.25  # a flat colour square: no spatial energy
    edge = np.zeros((2, 2, 3))
    edge[:, 0, :], edge[:, 1, :] = 1.0, -1.0  # a grey edge: every channel averages to 0
    # red: 1 on the left column, 0 on the right; mean 0.5, so half its energy of 2 is flat
    half = np.zeros((2, 2, 3))
    half[:, 0, 0] = 1.0
    share = metrics.spatial_energy_share(
        np.stack([flat.ravel(), edge.ravel(), half.ravel(), np.zeros(12)]))
    np.testing.assert_allclose(share, [0.0, 1.0, 0.5, 0.0], atol=1e-15)
    # grayscale: [1, 2, 3, 6] has mean 3, energy 50, flat energy 36
    np.testing.assert_allclose(metrics.spatial_energy_share([[1.0, 2, 3, 6]], channels=1),
                               [14 / 50])
    with pytest.raises(ValueError, match="multiple of 3 channels"):
        metrics.spatial_energy_share(np.ones((2, 10)))


def test_spatial_energy_share_is_scale_free_below_unit_energy():
    # [1, 2, 3, 6] / 10 has energy 0.5 (below 1) and [1, 2, 3, 6] / 1e4 energy 5e-7: the share is
    # 14/50 at every scale, and only the all-zero feature gets 0. On a (2, 3) layout of
    # 2 pixels x 3 channels, the means differ per channel: an axis swap changes the answer.
    for scale in (1.0, 0.1, 1e-4):
        share = metrics.spatial_energy_share([[1.0 * scale, 2 * scale, 3 * scale, 6 * scale]],
                                             channels=1)
        np.testing.assert_allclose(share, [14 / 50], rtol=1e-12)
    # pixels (1, 0, 0) and (0, 0, 1) in RGB: channel means (0.5, 0, 0.5), flat energy
    # 2 * (0.25 + 0.25) = 1 of a total 2 -> 0.5; scaled by 0.1, energy 0.02, the same share
    f = np.array([[1.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(metrics.spatial_energy_share(0.1 * f), [0.5], rtol=1e-12)
    # grayscale over the same six numbers: mean 1/3, flat energy 6/9, share 1 - (2/3)/2 = 2/3
    np.testing.assert_allclose(metrics.spatial_energy_share(0.1 * f, channels=1), [2 / 3],
                               rtol=1e-12)


def test_spatial_energy_share_is_float64_floored_at_zero_and_divides_no_zero():
    # float32 features are measured in float64: the share of the float32 numbers nearest
    # [1, 2, 3, 6] / 10, to float64's digits (float32 arithmetic would err by ~1e-8)
    f32 = np.array([[0.1, 0.2, 0.3, 0.6]], np.float32)
    v = f32[0].astype(np.float64)
    want = 1 - 4 * v.mean() ** 2 / np.sum(v**2)
    share = metrics.spatial_energy_share(f32, channels=1)
    assert share.dtype == np.float64
    np.testing.assert_allclose(share, [want], rtol=1e-14)
    f32_share = 1 - np.float32(4) * f32.mean() ** 2 / np.sum(f32**2)
    assert abs(float(f32_share) - want) > 1e-9  # what float32 would have given
    # A flat colour square whose rounding gives 1 - flat/total = -2.2e-16: the share is 0.
    colour = np.tile([0.85740428, 0.03358558, 0.72965545], 4)[None]
    assert metrics.spatial_energy_share(colour)[0] == 0.0
    # An all-zero feature is not divided by its zero energy: no warning, no NaN.
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(metrics.spatial_energy_share(np.zeros((2, 6))), [0.0, 0.0])


def test_results_are_the_named_floats_with_j_as_final_loss():
    terms = {"loss": jnp.asarray(2.5), "reconstruction": jnp.asarray(1.0),
             "weight_decay": jnp.asarray(0.5), "sparsity": jnp.asarray(1.0),
             "mean_l0": jnp.asarray(3.0), "fvu": jnp.asarray(0.25), "ignored": 9.0}
    stats = {k: jnp.asarray(float(i)) for i, k in enumerate(metrics.RESULTS[4:])}
    got = metrics.results(terms, stats)
    assert list(got) == list(metrics.RESULTS)
    assert got["final_loss"] == 2.5 and got["reconstruction"] == 1.0
    assert got["weight_decay"] == 0.5 and got["sparsity"] == 1.0
    assert all(type(v) is float for v in got.values())
    assert [got[k] for k in metrics.RESULTS[4:]] == [float(i) for i in range(len(stats))]


def test_activation_stats_of_tied_weights():
    # tied: W2 = W1^T, so the linear decoder gives a3 = a2 W1 + b2; a unit exactly at the dead
    # threshold is alive (dead: strictly below 0.1 rho).
    tied = {"W1": W1, "b1": B1, "b2": jnp.array([0.25, -0.5])}
    a2 = 1 / (1 + np.exp(-(np.asarray(X) @ np.asarray(W1).T + np.asarray(B1))))
    a3 = a2 @ np.asarray(W1) + np.array([0.25, -0.5])
    got = metrics.activation_stats(tied, X, 0.05, decoder="linear", tied=True)
    x = np.asarray(X)
    np.testing.assert_allclose(got["fvu"], np.sum((a3 - x) ** 2) / np.sum((x - x.mean(0)) ** 2),
                               rtol=1e-12)
    rho_hat = a2.mean(axis=0)
    # rho = 10 rho_hat of unit 3 (0.01): its threshold is exactly rho_hat_3, so only unit 2
    # (0.001) is dead
    rho = float(rho_hat[2]) / 0.1
    assert 0.1 * rho == rho_hat[2]
    got = metrics.activation_stats(tied, X, rho, decoder="linear", tied=True)
    np.testing.assert_allclose(got["dead_fraction"], 1 / 3, rtol=1e-6)


# --- recovery of a known dictionary ---------------------------------------------------------

def _dictionary(f=6, n=4, seed=0):
    d = np.random.default_rng(seed).normal(size=(f, n))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _true_codes(m=200, f=6, seed=1):
    rng = np.random.default_rng(seed)
    return np.where(rng.random((m, f)) < 0.3, rng.uniform(0.5, 1.5, (m, f)), 0.0)


def test_a_perfect_dictionary_is_recovered_whole():
    d, c = _dictionary(), _true_codes()
    out = metrics.recovery(d.T * 2.5, d, c, c)  # column norms do not matter
    assert out == {"mcc": pytest.approx(1.0), "recovered_fraction": 1.0, "f1": 1.0}


def test_recovery_is_free_of_row_norms_and_a_cosine_of_exactly_0_9_is_not_above_it():
    # feature 0 along e0 meets latent 0 = (9, 3, 3, 1) / 10 at |cos| 0.9 exactly (every step
    # exact in float64); feature 1 along e3 meets latent 1 = e3. Rows of norm 0.37 and 2.
    d = np.array([[0.37, 0, 0, 0], [0, 0, 0, 2.0]])
    w = np.array([[9.0, 3, 3, 1], [0, 0, 0, 5]]).T  # decoder columns (N, H)
    feature_P, latent_P, cos_P = metrics.match_features(w, d)
    assert feature_P.tolist() == [0, 1] and latent_P.tolist() == [0, 1]
    assert cos_P.tolist() == [0.9, 1.0]
    out = metrics.recovery(w, d)  # "exceeds 0.9" (docs/synthetic.md): the first does not
    assert out["recovered_fraction"] == 0.5 and out["mcc"] == pytest.approx(0.95, rel=1e-15)


def test_matching_is_free_of_decoder_column_norms_below_one():
    # latent 0 = e1 / 2 (norm 0.5), latent 1 = (0.06, 0.08) (norm 0.1: |cos| 0.6 with e0, 0.8
    # with e1), latent 2 = 0 (cosine 0 with both): the best matching sums 0.6 + 1, not 0 + 0.8
    d = np.eye(2)
    w = np.array([[0.0, 0.06, 0.0], [0.5, 0.08, 0.0]])  # decoder columns (N, H)
    feature_P, latent_P, cos_P = metrics.match_features(w, d)
    assert feature_P.tolist() == [0, 1] and latent_P.tolist() == [1, 0]
    np.testing.assert_allclose(cos_P, [0.6, 1.0], rtol=1e-15)


def test_a_permuted_and_sign_flipped_dictionary_is_matched_back():
    d, c = _dictionary(), _true_codes()
    perm = np.array([3, 0, 5, 1, 4, 2])
    signs = np.array([1, -1, 1, 1, -1, 1])
    decoder = (d[perm] * signs[:, None]).T  # latent j is true feature perm[j]
    feature, latent, cos = metrics.match_features(decoder, d)
    np.testing.assert_array_equal(perm[latent], feature)
    np.testing.assert_allclose(cos, 1.0)
    out = metrics.recovery(decoder, d, c[:, perm], c)
    assert out == {"mcc": pytest.approx(1.0), "recovered_fraction": 1.0, "f1": 1.0}


def test_a_degraded_dictionary_scores_its_hand_worked_values():
    # 2-D: three true features at angles 0, 90 and 45 degrees; the model's latents at 0, 90 and
    # 0.3 rad. The best one-to-one matching pairs them in order (1 + 1 + cos(pi/4 - 0.3) against
    # 0.3 rad's cos + 1 + cos(pi/4) for the swap); 2 of 3 features are above 0.9
    s = 1 / np.sqrt(2)
    d = np.array([[1.0, 0.0], [0.0, 1.0], [s, s]])
    decoder = np.array([[1.0, 0.0], [0.0, 1.0], [np.cos(0.3), np.sin(0.3)]]).T
    out = metrics.recovery(decoder, d)
    assert np.cos(np.pi / 4 - 0.3) < 0.9
    assert out["mcc"] == pytest.approx((2 + np.cos(np.pi / 4 - 0.3)) / 3)
    assert out["recovered_fraction"] == pytest.approx(2 / 3)
    assert np.isnan(out["f1"])
    # firing: feature 0 fires on examples 0-3, its latent on 0-1 and 4 (TP 2, FP 1, FN 2:
    # F1 = 4/7); feature 1 and its latent agree (F1 1); feature 2 never fires and its latent
    # fires once (F1 0)
    true = np.zeros((6, 3))
    true[:4, 0] = 1
    true[[1, 5], 1] = 1
    codes = np.zeros((6, 3))
    codes[[0, 1, 4], 0] = 1
    codes[[1, 5], 1] = 1
    codes[2, 2] = 1
    out = metrics.recovery(decoder, d, codes, true)
    assert out["f1"] == pytest.approx((4 / 7 + 1 + 0) / 3)


def test_fewer_latents_than_features_leave_the_rest_unrecovered():
    d, c = _dictionary(f=6), _true_codes(f=6)
    out = metrics.recovery(d[:4].T, d, c[:, :4], c)
    assert out["mcc"] == pytest.approx(1.0)  # the mean over the 4 matched pairs, as SAELens
    assert out["recovered_fraction"] == pytest.approx(4 / 6)
    assert out["f1"] == pytest.approx(4 / 6)


def test_firing_f1_of_columns_that_never_fire_is_zero():
    np.testing.assert_array_equal(metrics.firing_f1(np.zeros((3, 2), bool),
                                                    np.zeros((3, 2), bool)), [0.0, 0.0])


def test_localization_and_kurtosis_on_planted_filters():
    """A point filter is all in one block, a flat one a quarter; Gaussian responses have
    excess kurtosis 0, Laplace ones 3."""
    point, flat = np.zeros(64), np.full(64, 1 / 8)
    point[27] = 1.0
    np.testing.assert_allclose(metrics.localization(np.stack([point, flat]), 8), [1.0, 16 / 64])
    colour = np.zeros((8, 8, 3))
    colour[:2, :2] = 1.0  # a 2x2 corner in every channel: all in one 4x4 block
    assert metrics.localization(colour.reshape(1, -1), 8, 3)[0] == pytest.approx(1.0)
    # the last block reaches the last row and column: a point in the corner is all in it, and
    # beside a point of 1/4 its energy in the opposite corner it holds 4/5 of the filter's
    corner, two = np.zeros(64), np.zeros(64)
    corner[63] = 1.0
    two[[0, 63]] = 0.5, 1.0
    np.testing.assert_allclose(metrics.localization(np.stack([corner, two]), 8), [1.0, 0.8])
    rng = np.random.default_rng(7)
    x = np.stack([rng.normal(size=200_000), rng.laplace(size=200_000)], axis=1)
    np.testing.assert_allclose(metrics.kurtosis(np.eye(2), x), [0.0, 3.0], atol=0.15)
