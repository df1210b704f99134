"""ADMM trainer: each closed-form update minimises its subproblem; residuals fall; NIR export."""

from __future__ import annotations

import numpy as np
import pytest

from neurocompile.errors import InputDataError
from neurocompile.ir.io import load_graph, save_graph
from neurocompile.targets.reference import simulate
from neurocompile.train.admm import (
    ADMMConfig,
    ADMMNet,
    ADMMTrainer,
    output_relay_update,
    preactivation_update,
    readout_preactivation_update,
    relay_update,
    soft_threshold,
    spike_membrane_update,
    weight_update,
)

RNG = np.random.default_rng(7)


def _branch_min_grid(p, q, e, c, vth, rho_m, rho_r, cost=(0.0, 0.0)):
    """Brute force over s in {0, 1}: each branch minimised over a dense grid of v."""
    best = (np.inf, None, None)
    for s in (0.0, 1.0):
        grid = np.linspace(vth - 6, vth, 120001) if s == 0 else np.linspace(vth + 1e-6, vth + 6,
                                                                           120001)
        r = grid * (1 - s)
        f = 0.5 * rho_m * (grid - p) ** 2 + 0.5 * rho_r * (s - e) ** 2 + cost[int(s)]
        if q is not None:
            f = f + 0.5 * rho_m * (c * r - q) ** 2
        i = int(np.argmin(f))
        if f[i] < best[0]:
            best = (f[i], grid[i], s)
    return best


@pytest.mark.parametrize("last", [False, True])
@pytest.mark.parametrize("downstream", [False, True])
def test_spike_membrane_update_matches_brute_force(last, downstream):
    vth = 1.0
    for _ in range(200):
        p, q, e = RNG.normal(1.0, 1.2), RNG.normal(0.5, 1.0), RNG.normal(0.5, 0.8)
        c = RNG.uniform(0.0, 1.0)
        rho_m, rho_r = RNG.uniform(0.1, 3.0), RNG.uniform(0.1, 3.0)
        cost = tuple(RNG.normal(0, 0.5, 2)) if downstream else (0.0, 0.0)
        qq = None if last else np.array(q)
        v, s, f = spike_membrane_update(np.array(p), qq, np.array(e), np.array(c),
                                        np.array(vth), rho_m, rho_r, eps=1e-6,
                                        spike_cost=tuple(map(np.array, cost)))
        f_bf, v_bf, s_bf = _branch_min_grid(p, None if last else q, e, c, vth, rho_m, rho_r,
                                            cost)
        assert f <= f_bf + 1e-8  # never worse than the brute-force minimum
        assert f == pytest.approx(f_bf, abs=1e-6)
        # the returned (v, s) is consistent with the step function and attains f
        assert bool(s) == bool(v > vth)
        r = v * (1 - s)
        f_check = 0.5 * rho_m * (v - p) ** 2 + 0.5 * rho_r * (s - e) ** 2 + cost[int(s)]
        if not last:
            f_check += 0.5 * rho_m * (c * r - q) ** 2
        assert f == pytest.approx(f_check, abs=1e-12)
        if abs(f_bf - f) > 1e-5:  # not a near-tie: the same branch as brute force
            assert s == s_bf


def test_spike_update_picks_spike_when_relay_asks_and_membrane_allows():
    # p just below threshold: small membrane cost to cross; e = 1 wants a spike.
    v, s, _ = spike_membrane_update(np.array([0.95, 0.95, -2.0]), None, np.array([1.0, 0.0, 1.0]),
                                    np.array(0.9), np.array(1.0), 1.0, 1.0)
    np.testing.assert_array_equal(s, [1.0, 0.0, 0.0])
    assert v[0] > 1.0 and v[1] == pytest.approx(0.95) and v[2] == pytest.approx(-2.0)


def test_weight_update_equals_ridge_least_squares():
    a = np.hstack([RNG.normal(size=(40, 5)), np.ones((40, 1))])
    tgt = RNG.normal(size=(40, 3))
    rho, ridge = 2.0, 0.3
    theta = weight_update(a, tgt, rho, ridge)
    # augmented lstsq: ridge on the weight rows only
    aug = np.vstack([np.sqrt(rho) * a, np.hstack([np.sqrt(ridge) * np.eye(5), np.zeros((5, 1))])])
    rhs = np.vstack([np.sqrt(rho) * tgt, np.zeros((5, 3))])
    ref = np.linalg.lstsq(aug, rhs, rcond=None)[0]
    np.testing.assert_allclose(theta, ref, rtol=1e-6, atol=1e-8)


def test_weight_update_with_l1_split_term_minimises_objective():
    a = np.hstack([RNG.normal(size=(30, 4)), np.ones((30, 1))])
    tgt = RNG.normal(size=(30, 2))
    qt = RNG.normal(size=(2, 4))
    rho, ridge, rho_q = 1.5, 0.1, 0.7
    theta = weight_update(a, tgt, rho, ridge, qt, rho_q)

    def obj(th):
        w = th[:-1].T
        return (0.5 * rho * np.sum((a @ th - tgt) ** 2) + 0.5 * ridge * np.sum(w ** 2)
                + 0.5 * rho_q * np.sum((w - qt) ** 2))

    base = obj(theta)
    for _ in range(50):  # any perturbation increases the (strictly convex) objective
        assert obj(theta + 1e-3 * RNG.normal(size=theta.shape)) > base


def test_soft_threshold_is_the_l1_prox():
    x = np.linspace(-3, 3, 61)
    k = 0.8
    out = soft_threshold(x, k)
    grid = np.linspace(-4, 4, 80001)
    for xi, oi in zip(x, out):
        f = 0.5 * (grid - xi) ** 2 + k * np.abs(grid)
        assert oi == pytest.approx(grid[np.argmin(f)], abs=1e-4)
    assert np.all(out[np.abs(x) <= k] == 0)


def test_preactivation_update_minimises_elementwise():
    m, lam, w = RNG.normal(size=50), RNG.normal(size=50), RNG.normal(size=50)
    g, rho_s, rho_m = 0.8, 1.3, 0.6
    z = preactivation_update(m, lam, w, g, rho_s, rho_m)
    grid = np.linspace(-10, 10, 200001)
    for i in range(50):
        f = 0.5 * rho_s * (grid - m[i] + lam[i] / rho_s) ** 2 + 0.5 * rho_m * (g * grid - w[i]) ** 2
        assert z[i] == pytest.approx(grid[np.argmin(f)], abs=2e-4)


def test_relay_update_equals_stacked_least_squares():
    w = RNG.normal(size=(3, 6))
    tgt, s, nu = RNG.normal(size=(10, 3)), RNG.integers(0, 2, (10, 6)).astype(float), \
        RNG.normal(size=(10, 6))
    rho_s, rho_r = 0.9, 2.5
    a = relay_update(w, tgt, s, nu, rho_s, rho_r)
    for i in range(10):
        mat = np.vstack([np.sqrt(rho_s) * w, np.sqrt(rho_r) * np.eye(6)])
        rhs = np.concatenate([np.sqrt(rho_s) * tgt[i], np.sqrt(rho_r) * (s[i] - nu[i] / rho_r)])
        np.testing.assert_allclose(a[i], np.linalg.lstsq(mat, rhs, rcond=None)[0], atol=1e-10)


def test_readout_preactivation_update_is_least_squares():
    n, steps, cls = 4, 5, 3
    d = RNG.normal(size=(n, steps, cls))
    y = RNG.normal(size=(n, cls))
    kappa = RNG.uniform(0.1, 1.0, steps)
    rho = 0.7
    z = readout_preactivation_update(d, kappa, y, rho)
    for i in range(n):
        for j in range(cls):  # min 1/2 (y - kappa.z)^2 + rho/2 ||z - d||^2 over z (steps,)
            mat = np.vstack([kappa[None, :], np.sqrt(rho) * np.eye(steps)])
            rhs = np.concatenate([[y[i, j]], np.sqrt(rho) * d[i, :, j]])
            np.testing.assert_allclose(z[i, :, j], np.linalg.lstsq(mat, rhs, rcond=None)[0],
                                       atol=1e-10)


def _separable_task(n=60, steps=8, n_in=6, seed=0):
    """Two classes; class k drives input channels 3k..3k+2 with high spike probability."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    p = np.full((n, 1, n_in), 0.05)
    for i, k in enumerate(y):
        p[i, 0, 3 * k:3 * k + 3] = 0.8
    x = (rng.random((n, steps, n_in)) < p).astype(np.float64)
    return x, y


def test_residuals_decrease_at_constant_rho():
    x, y = _separable_task()
    # constant rho (the default mode): the classical setting in which both residuals must fall
    cfg = ADMMConfig(n_hidden=(12,), iterations=30, rho=0.05, init_scale=1.0,
                     refit_readout=False, seed=1)
    trainer = ADMMTrainer(cfg)
    trainer.fit(x, y, n_classes=2)
    hist = trainer.history
    assert [h["iteration"] for h in hist] == list(range(31))  # row 0: before the first update
    assert {h["rho"] for h in hist} == {0.05}
    its = hist[1:]
    early_p = np.mean([h["primal"] for h in its[:3]])
    late_p = np.mean([h["primal"] for h in its[-3:]])
    early_d = np.mean([h["dual"] for h in its[:3]])
    late_d = np.mean([h["dual"] for h in its[-3:]])
    assert late_p < 0.2 * early_p
    assert late_d < 0.5 * early_d
    assert hist[-1]["loss"] <= hist[0]["loss"] + 1e-6


def _small_digits(n_train=400, steps=6):
    """Digits with few samples and steps: with 8 hidden LIF neurons, random hidden weights
    plus the closed-form readout reach well under half the test accuracy that trained ones do."""
    from neurocompile.data.digits import load_digits_task

    data = load_digits_task("rate", steps=steps, seed=0)
    return data.train.x[:n_train], data.train.y[:n_train], data.test.x, data.test.y


@pytest.mark.parametrize(("seed", "spike_update"), [(0, "relay"), (1, "relay"),
                                                   (0, "downstream")])
def test_iterations_improve_on_zero_iterations_where_random_features_fail(seed, spike_update):
    x, y, xt, yt = _small_digits()
    trainer = ADMMTrainer(ADMMConfig(n_hidden=(8,), iterations=80, seed=seed,
                                     spike_update=spike_update))
    net = trainer.fit(x, y, 10, eval_sets={"test": (xt, yt)})
    start, end = trainer.history[0], trainer.history[-1]
    assert start["test_acc_refit"] < 0.5  # the task: random features are not enough
    # the iterations must move the hidden layer: >= 15 points on held-out data, refitted
    assert end["test_acc_refit"] >= start["test_acc_refit"] + 0.15
    assert end["train_acc_refit"] >= start["train_acc_refit"] + 0.15
    # ADMM's own readout (no refit) improves too
    assert end["test_acc"] >= start["test_acc"] + 0.05
    # the returned network is the refitted one
    assert np.mean(net.predict(xt) == yt) == pytest.approx(end["test_acc_refit"], abs=0.01)


def test_zero_iterations_records_the_start_only():
    x, y, xt, yt = _small_digits(n_train=100, steps=4)
    trainer = ADMMTrainer(ADMMConfig(n_hidden=(8,), iterations=0, seed=0))
    net = trainer.fit(x, y, 10, eval_sets={"test": (xt, yt)})
    (row,) = trainer.history
    assert row["iteration"] == 0 and row["test_acc"] == row["test_acc_refit"]
    assert np.mean(net.predict(xt) == yt) == pytest.approx(row["test_acc"], abs=0.01)


@pytest.mark.parametrize("spike_update", ["relay", "downstream"])
def test_two_hidden_layers_improve_on_zero_iterations(spike_update):
    x, y, xt, yt = _small_digits(n_train=300)
    trainer = ADMMTrainer(ADMMConfig(n_hidden=(12, 12), iterations=60, seed=0,
                                     spike_update=spike_update))
    trainer.fit(x, y, 10, eval_sets={"test": (xt, yt)})
    start, end = trainer.history[0], trainer.history[-1]
    assert end["train_acc_refit"] >= start["train_acc_refit"] + 0.05


def test_penalty_schedules():
    from neurocompile.train.admm import _next_rho

    row = {"primal": 1.0, "dual": 0.0}  # primal far above dual: balancing raises rho
    cfg = ADMMConfig(rho=1e-3, rho_mode="balance", balance_range=8.0)
    rho, seen = cfg.rho, []
    for _ in range(10):
        rho = _next_rho(rho, row, cfg)
        seen.append(rho)
    assert seen[0] == pytest.approx(2e-3) and max(seen) == pytest.approx(8e-3)  # bounded
    cfg = ADMMConfig(rho=1e-3, rho_mode="geometric", rho_growth=2.0, rho_max=3e-3)
    assert _next_rho(1e-3, row, cfg) == pytest.approx(2e-3)
    assert _next_rho(2e-3, row, cfg) == pytest.approx(3e-3)
    assert _next_rho(1e-3, row, ADMMConfig(rho=1e-3)) == 1e-3  # constant: the default


@pytest.mark.parametrize(("l1", "spike_update"), [(0.0, "relay"), (0.05, "relay"),
                                                 (0.0, "downstream")])
def test_nir_export_simulates_identically(tmp_path, l1, spike_update):
    x, y = _separable_task(n=30, steps=6)
    cfg = ADMMConfig(n_hidden=(10, 7), iterations=4, init_scale=2.0, l1=l1, seed=3,
                     spike_update=spike_update)
    net = ADMMTrainer(cfg).fit(x, y, n_classes=2)
    graph = net.to_nir()
    assert list(graph.nodes) == ["input", "fc1", "lif1", "fc2", "lif2", "fc_out", "readout",
                                 "output"]
    assert graph.metadata["dt"] == cfg.dt
    path = save_graph(graph, tmp_path / "admm.nir")
    loaded = load_graph(path)
    out, spikes = net.forward(x)
    for g in (graph, loaded):
        res = simulate(g, {"input": x})
        np.testing.assert_array_equal(res.outputs["output"], out)
        for name, s in spikes.items():
            assert res.counters[name].spikes == int(s.sum())
    assert sum(int(s.sum()) for s in spikes.values()) > 0  # a non-trivial network
    if l1 > 0:
        assert net.n_nonzero() < net.n_params()


def test_fit_rejects_bad_shapes():
    with pytest.raises(InputDataError, match="batch, steps, features"):
        ADMMTrainer(ADMMConfig(iterations=1)).fit(np.zeros((4, 3)), np.zeros(4, int))
    with pytest.raises(InputDataError, match="labels"):
        ADMMTrainer(ADMMConfig(iterations=1)).fit(np.zeros((4, 3, 2)), np.zeros(3, int))
    net = ADMMNet([np.zeros((3, 2)), np.zeros((2, 3))], [np.zeros(3), np.zeros(2)])
    with pytest.raises(InputDataError, match="expected x of shape"):
        net.forward(np.zeros((1, 4, 5)))


def test_zoo_model_and_its_nir_export_equal_the_trainer(tmp_path):
    pytest.importorskip("torch")
    from neurocompile.train.admm import round_float32, to_model
    from neurocompile.train.export import to_nir

    x, y = _separable_task(n=20, steps=6)
    net = round_float32(ADMMTrainer(ADMMConfig(n_hidden=(9,), iterations=2, init_scale=2.0,
                                               seed=2)).fit(x, y, n_classes=2))
    graph = to_nir(to_model(net))
    assert {"input", "fc1", "lif1", "fc_out", "readout", "output"} <= set(graph.nodes)
    out, _ = net.forward(x)
    res = simulate(graph, {"input": x})
    np.testing.assert_array_equal(res.outputs["output"], out)


def test_loop_config_bridge_writes_checkpoint_and_metrics(tmp_path):
    pytest.importorskip("torch")
    from neurocompile.data.digits import DataSplits, SpikeDataset
    from neurocompile.errors import UnsupportedError
    from neurocompile.train.admm import train_with_loop_config
    from neurocompile.train.checkpoint import load_model
    from neurocompile.train.loop import TrainConfig

    x, y = _separable_task(n=40, steps=6)
    ds = [SpikeDataset(x[i::3].astype(np.float32), y[i::3], 2, "toy") for i in range(3)]
    cfg = TrainConfig(model="ff", model_kwargs={"n_hidden": 8}, optimizer="admm", epochs=3,
                      reg=None, out_dir=str(tmp_path), progress=False)
    model, metrics = train_with_loop_config(cfg, data=DataSplits(*ds))
    assert [r["epoch"] for r in metrics["epochs"]] == [0, 1, 2, 3]  # 0: the start
    assert metrics["best_epoch"] == 3 and 0.0 <= metrics["test_acc"] <= 1.0
    assert (tmp_path / "metrics.json").exists()
    loaded, _ = load_model(tmp_path / "checkpoint.safetensors")
    assert loaded.fc1.weight.shape == (8, 6)
    with pytest.raises(UnsupportedError, match="model 'ff'"):
        train_with_loop_config(TrainConfig(model="rsnn", optimizer="admm"),
                               data=DataSplits(*ds))


def test_output_relay_update_is_least_squares():
    n, steps, hid, cls = 3, 5, 4, 2
    w_o = RNG.normal(size=(cls, hid))
    y_res, e = RNG.normal(size=(n, cls)), RNG.normal(size=(n, steps, hid))
    k = np.append(RNG.uniform(0.1, 1.0, steps - 1), 0.0)
    rho_r = 0.3
    a = output_relay_update(w_o, y_res, e, k, rho_r)
    for i in range(n):  # min 1/2 ||y - W_o sum_t k_t a[t]||^2 + rho_r/2 ||a - e||^2 over a
        mat = np.vstack([np.kron(k[None, :], w_o), np.sqrt(rho_r) * np.eye(steps * hid)])
        rhs = np.concatenate([y_res[i], np.sqrt(rho_r) * e[i].reshape(-1)])
        ref = np.linalg.lstsq(mat, rhs, rcond=None)[0].reshape(steps, hid)
        np.testing.assert_allclose(a[i], ref, atol=1e-10)
    np.testing.assert_allclose(a[:, -1], e[:, -1])  # the last step does not reach the readout


def test_joint_output_and_residual_balancing_export_identically():
    x, y = _separable_task(n=30, steps=6)
    cfg = ADMMConfig(n_hidden=(10,), iterations=6, output="joint", rho_mode="balance",
                     balance_mu=1.5, init_scale=2.0, seed=4)
    trainer = ADMMTrainer(cfg)
    net = trainer.fit(x, y, n_classes=2)
    assert len({h["rho"] for h in trainer.history}) > 1  # balancing moved rho
    out, spikes = net.forward(x)
    res = simulate(net.to_nir(), {"input": x})
    np.testing.assert_array_equal(res.outputs["output"], out)
    assert spikes["lif1"].sum() > 0
    assert np.mean(net.predict(x) == y) >= 0.9


def test_fit_rejects_unknown_modes():
    from neurocompile.errors import ConfigError

    x, y = _separable_task(n=10, steps=4)
    with pytest.raises(ConfigError, match="output must be"):
        ADMMTrainer(ADMMConfig(iterations=1, output="both")).fit(x, y)
    with pytest.raises(ConfigError, match="rho_mode must be one of constant"):
        ADMMTrainer(ADMMConfig(iterations=1, rho_mode="schedule")).fit(x, y)
    with pytest.raises(ConfigError, match="rho out of range"):
        ADMMTrainer(ADMMConfig(iterations=1, rho=0.0)).fit(x, y)


def test_train_command_options_reach_the_admm_config(tmp_path, capsys):
    from neurocompile.cli.main import main
    from neurocompile.cli.train_cmd import config_from_options
    from neurocompile.errors import ConfigError
    from neurocompile.train.admm import admm_config_from_options

    cfg = config_from_options({"optimizer": "admm", "epochs": 40, "reg": "none",
                               "optimizer_kwargs": ("rho=1e-4", "rho_mode=balance")},
                              hidden=16)
    admm = admm_config_from_options(cfg, (16,), {})
    assert (admm.rho, admm.rho_mode, admm.iterations, admm.l1) == (1e-4, "balance", 40, 0.0)
    with pytest.raises(ConfigError, match="'iterations' is set by --epochs"):
        admm_config_from_options(config_from_options(
            {"optimizer": "admm", "optimizer_kwargs": ("iterations=3",)}), (4,), {})
    with pytest.raises(ConfigError, match="unknown key 'rhoo'"):
        admm_config_from_options(config_from_options(
            {"optimizer": "admm", "optimizer_kwargs": ("rhoo=3",)}), (4,), {})
    with pytest.raises(ConfigError, match="apply to optimizer 'admm' only"):
        config_from_options({"optimizer": "adam", "optimizer_kwargs": ("rho=1",)})
    with pytest.raises(SystemExit) as exc:
        main(["train", "--optimizer", "admm", "--optimizer-opt", "rho_mode=fast", "-o",
              str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "optimizer_kwargs: rho_mode must be one of constant" in err
