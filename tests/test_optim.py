"""LinBreg / AdaBreg: hand-computed steps, Adam equivalence at lambda = 0, sparse init."""

from __future__ import annotations

import math

import pytest
import torch

from neurocompile.train.optim import (
    AdaBreg,
    LinBreg,
    bregman_param_groups,
    dual_from_primal,
    group_soft_threshold,
    prox,
    soft_threshold,
    sparse_init_,
)


def _t(*v):
    return torch.tensor(v, dtype=torch.float64)


def test_soft_threshold_by_hand():
    z = _t(-3.0, -0.5, 0.0, 0.5, 2.0)
    torch.testing.assert_close(soft_threshold(z, 1.0), _t(-2.0, 0.0, 0.0, 0.0, 1.0))
    torch.testing.assert_close(prox(z, "elastic", lam=1.0, l2=1.0, delta=1.0),
                               _t(-1.0, 0.0, 0.0, 0.0, 0.5))
    torch.testing.assert_close(prox(z, None), z)


def test_group_soft_threshold_by_hand():
    z = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], dtype=torch.float64)
    out = group_soft_threshold(z, 1.0)  # row norms 5, 0.5, 0 -> factors 0.8, 0, 0
    torch.testing.assert_close(out, torch.tensor([[2.4, 3.2], [0.0, 0.0], [0.0, 0.0]],
                                                 dtype=torch.float64))
    torch.testing.assert_close(group_soft_threshold(_t(-2.0, 0.5), 1.0), _t(-1.0, 0.0))


def test_linbreg_step_by_hand():
    p = torch.nn.Parameter(_t(0.5, 0.0, -0.2))
    opt = LinBreg([p], lr=0.1, reg="l1", lam=0.1, delta=1.0)
    p.grad = _t(1.0, -2.0, 0.5)
    opt.step()
    # v0 = theta + lam*sign(theta) = [0.6, 0, -0.3]; v1 = v0 - 0.1*g = [0.5, 0.2, -0.35]
    torch.testing.assert_close(opt.state[p]["v"], _t(0.5, 0.2, -0.35))
    torch.testing.assert_close(p.detach(), _t(0.4, 0.1, -0.25))  # soft threshold at 0.1
    p.grad = _t(0.0, 1.5, 0.0)  # v = [0.5, 0.05, -0.35]: the middle weight drops back to zero
    opt.step()
    torch.testing.assert_close(p.detach(), _t(0.4, 0.0, -0.25))


def test_linbreg_delta_and_elastic_by_hand():
    p = torch.nn.Parameter(_t(0.5, 0.0, -0.2))
    opt = LinBreg([p], lr=0.1, reg="l1", lam=0.1, delta=2.0)
    p.grad = _t(1.0, -2.0, 0.5)
    opt.step()
    # v0 = theta/2 + 0.1*sign = [0.35, 0, -0.2]; v1 = [0.25, 0.2, -0.25]
    # theta = soft(2*v1, 2*0.1) = soft([0.5, 0.4, -0.5], 0.2)
    torch.testing.assert_close(p.detach(), _t(0.3, 0.2, -0.3))

    q = torch.nn.Parameter(_t(0.5, 0.0))
    opt = LinBreg([q], lr=1.0, reg="elastic", lam=0.1, l2=1.0, delta=1.0)
    q.grad = _t(0.0, -0.5)
    opt.step()
    # v0 = theta + l2*theta + lam*sign = [1.1, 0]; v1 = [1.1, 0.5]
    # theta = soft(v1, 0.1) / (1 + 1) = [0.5, 0.2]
    torch.testing.assert_close(q.detach(), _t(0.5, 0.2))


def test_group_linbreg_switches_whole_rows():
    w = torch.nn.Parameter(torch.tensor([[0.6, 0.8], [0.0, 0.0]], dtype=torch.float64))
    opt = LinBreg([w], lr=1.0, reg="group", lam=0.5)
    # v0 row 0 = theta + lam * theta/|theta| = [0.9, 1.2]; row 1 = 0
    w.grad = torch.tensor([[0.0, 0.0], [-0.3, -0.4]], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(w.detach()[0], _t(0.6, 0.8))  # prox returns row 0 unchanged
    torch.testing.assert_close(w.detach()[1], _t(0.0, 0.0))  # |v row 1| = 0.5: not past lam
    w.grad = torch.tensor([[0.0, 0.0], [-0.3, -0.4]], dtype=torch.float64)
    opt.step()  # v row 1 = [0.6, 0.8], norm 1 -> factor 1 - 0.5/1
    torch.testing.assert_close(w.detach()[1], _t(0.3, 0.4))


def test_adabreg_bias_corrected_steps_by_hand():
    p = torch.nn.Parameter(_t(0.0, 0.0, 0.3))
    lr, lam, b1, b2, eps = 0.1, 0.05, 0.9, 0.999, 1e-8
    opt = AdaBreg([p], lr=lr, betas=(b1, b2), eps=eps, reg="l1", lam=lam)
    g1, g2 = _t(2.0, -0.5, 1.0), _t(-1.0, -0.5, 4.0)
    v = p.detach() + lam * torch.sign(p.detach())
    p.grad = g1
    opt.step()
    # step 1: the bias-corrected moments are g and g^2, so v moves by lr * g/(|g| + eps)
    v = v - lr * g1 / (g1.abs() + eps)
    torch.testing.assert_close(opt.state[p]["v"], v)
    torch.testing.assert_close(p.detach(), soft_threshold(v, lam))
    torch.testing.assert_close(p.detach()[:2], _t(-0.05, 0.05))
    p.grad = g2
    opt.step()
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    s = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    m_hat, s_hat = m / (1 - b1**2), s / (1 - b2**2)
    v = v - lr * m_hat / (s_hat.sqrt() + eps)
    torch.testing.assert_close(p.detach(), soft_threshold(v, lam))


@pytest.mark.parametrize("reg", [None, "l1", "group"])
def test_adabreg_with_lambda_zero_is_adam(reg):
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    b = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2)
    opt_b = AdaBreg(bregman_param_groups(b, lam=0.0, reg=reg), lr=1e-2)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    for _ in range(8):
        for net, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)
    assert not torch.equal(a[0].weight, b[0].weight.new_zeros(4, 5))


def test_sparse_init_density_and_consistent_dual():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.Linear(30, 10))
    weights = [net[0].weight, net[1].weight]
    density = sparse_init_(weights, 0.25, seed=1)
    assert density == pytest.approx(0.25, abs=1e-3)
    assert int((net[0].weight != 0).sum()) == 300 and int((net[1].weight != 0).sum()) == 75
    for reg, lam, l2, delta in (("l1", 0.1, 0.0, 1.0), ("elastic", 0.2, 0.5, 2.0),
                                ("group", 0.3, 0.0, 0.5)):
        before = [p.detach().clone() for p in net.parameters()]
        opt = LinBreg(bregman_param_groups(net, lam, reg, l2, delta), lr=0.1)
        opt.init_dual()
        for group in opt.param_groups:
            for p in group["params"]:
                z = group["delta"] * opt.state[p]["v"]
                torch.testing.assert_close(prox(z, group["reg"], group["lam"], group["l2"],
                                                group["delta"]), p.detach())
        opt.apply_prox()  # and applying it (a step with zero gradient) changes nothing
        for p in net.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        for p, q in zip(net.parameters(), before):
            torch.testing.assert_close(p.detach(), q, rtol=1e-6, atol=1e-7)


def test_sparse_init_rows_and_rescale():
    w = torch.ones(20, 6)
    sparse_init_([w], 0.3, seed=0, structure="row", rescale=True)
    rows = (w != 0).any(dim=1)
    assert int(rows.sum()) == 6
    assert torch.all(w[rows] == 1 / math.sqrt(0.3))
    with pytest.raises(ValueError, match="density"):
        sparse_init_([w], 0.0)


def test_zero_weights_stay_zero_until_the_dual_passes_lambda():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = LinBreg([p], lr=0.01, reg="l1", lam=0.05)
    for k in range(1, 8):
        p.grad = torch.tensor([-1.0, 0.5, 0.0])
        opt.step()
        if k <= 5:
            assert torch.count_nonzero(p) == 0, k  # |v| = 0.01 k <= lam
    assert p[0] > 0 and p[1] == 0 and p[2] == 0


def test_bad_options_raise():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="regulariser"):
        LinBreg([p], reg="l0")
    with pytest.raises(ValueError, match="lam"):
        AdaBreg([p], lam=-1.0)
    with pytest.raises(ValueError, match="regulariser"):
        dual_from_primal(p, "l0")
