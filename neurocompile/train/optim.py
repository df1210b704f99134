"""Bregman optimizers for sparse training: LinBreg and AdaBreg, with sparse initialisation.

Linearized Bregman iterations keep a dual ("subgradient") variable v per parameter and obtain
the parameter theta from it by a proximal map of the regulariser J:

    v     <- v - lr * g                      (g: the gradient, or Adam's corrected step)
    theta <- prox_{delta J}(delta * v)

so a weight is non-zero only once |v| has grown past the threshold lambda: training starts
sparse and adds weights as the loss asks for them (an inverse scale space flow), instead of
starting dense and pruning. References:

* L. Bungert, T. Roith, D. Tenbrinck, M. Burger, "A Bregman learning framework for sparse
  neural networks", JMLR 23(192), 2022 (LinBreg: Algorithm 1; AdaBreg: Algorithm 3; sparse
  initialisation: Sec. 4.2).
* D. Windhager, B. Moser, M. Lunglmayr, "Bregman-based training of sparse spiking neural
  networks" (linearized Bregman / AdaBreg applied to surrogate-gradient SNN training).

Regularisers, chosen per parameter group (``reg``):

    None       J = 0                                   prox: theta = delta * v
    "l1"       J = lam * |theta|_1                     soft thresholding at delta * lam
    "elastic"  J = lam * |theta|_1 + l2/2 * |theta|^2  soft thresholding, then / (1 + delta*l2)
    "group"    J = lam * sum_rows |theta_row|_2        row-wise group soft thresholding: a row is
               one output neuron's incoming weights (dim 0 of a Linear/Conv weight), so whole
               neurons switch off (neuron sparsity)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

REGULARIZERS = (None, "l1", "elastic", "group")


def soft_threshold(z: torch.Tensor, t: float) -> torch.Tensor:
    """sign(z) * max(|z| - t, 0): the prox of t * |.|_1."""
    return torch.sign(z) * torch.clamp(z.abs() - t, min=0)


def _row_norms(z: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each row (dim 0) of z, shaped to broadcast against z."""
    if z.dim() <= 1:
        return z.abs()
    return z.reshape(z.shape[0], -1).norm(dim=1).reshape((-1,) + (1,) * (z.dim() - 1))


def group_soft_threshold(z: torch.Tensor, t: float) -> torch.Tensor:
    """Row-wise group soft thresholding z_row * max(1 - t/|z_row|_2, 0): prox of t*sum |row|_2.

    Rows are slices along dim 0; a 0-d or 1-d tensor is treated element by element (l1).
    """
    norms = _row_norms(z)
    factor = torch.clamp(1 - t / torch.clamp(norms, min=torch.finfo(z.dtype).tiny), min=0)
    return z * factor


def prox(z: torch.Tensor, reg: str | None, lam: float = 0.0, l2: float = 0.0,
         delta: float = 1.0) -> torch.Tensor:
    """theta = prox_{delta J}(z) for the regulariser `reg` (z is delta * v)."""
    if reg is None:
        return z.clone()
    if reg == "l1":
        return soft_threshold(z, delta * lam)
    if reg == "elastic":
        return soft_threshold(z, delta * lam) / (1 + delta * l2)
    if reg == "group":
        return group_soft_threshold(z, delta * lam)
    raise ValueError(f"unknown regulariser {reg!r}; choose one of {REGULARIZERS}")


def dual_from_primal(theta: torch.Tensor, reg: str | None, lam: float = 0.0, l2: float = 0.0,
                     delta: float = 1.0) -> torch.Tensor:
    """A dual variable v with prox_{delta J}(delta * v) == theta: v = theta/delta + p, p in dJ.

    The subgradient taken is lam*sign(theta) (l1, elastic adds l2*theta) or lam*row/|row|
    (group), with 0 where theta (or the row) is zero, so zero weights stay zero.
    """
    if reg is None:
        return theta / delta
    if reg == "l1":
        return theta / delta + lam * torch.sign(theta)
    if reg == "elastic":
        return theta / delta + l2 * theta + lam * torch.sign(theta)
    if reg == "group":
        norms = _row_norms(theta)
        unit = torch.where(norms > 0, theta / torch.clamp(norms, min=torch.finfo(theta.dtype).tiny),
                           torch.zeros_like(theta))
        return theta / delta + lam * unit
    raise ValueError(f"unknown regulariser {reg!r}; choose one of {REGULARIZERS}")


class _Bregman(torch.optim.Optimizer):
    """Shared parts: group options, the dual variable v, the prox step."""

    def __init__(self, params, defaults: dict) -> None:
        if defaults["lr"] < 0:
            raise ValueError(f"learning rate must be >= 0, got {defaults['lr']}")
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["reg"] not in REGULARIZERS:
                raise ValueError(f"unknown regulariser {group['reg']!r}; "
                                 f"choose one of {REGULARIZERS}")
            if group["lam"] < 0 or group["l2"] < 0 or not group["delta"] > 0:
                raise ValueError(f"need lam >= 0, l2 >= 0, delta > 0; got lam={group['lam']}, "
                                 f"l2={group['l2']}, delta={group['delta']}")

    @staticmethod
    def _prox_args(group: dict) -> tuple:
        return group["reg"], group["lam"], group["l2"], group["delta"]

    @torch.no_grad()
    def init_dual(self) -> None:
        """Set every parameter's dual v from its current value (so the prox returns it)."""
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["v"] = dual_from_primal(p.detach(), *self._prox_args(group))

    def _dual(self, p: torch.Tensor, group: dict) -> torch.Tensor:
        state = self.state[p]
        if "v" not in state:
            state["v"] = dual_from_primal(p.detach(), *self._prox_args(group))
        return state["v"]

    @torch.no_grad()
    def apply_prox(self) -> None:
        """theta <- prox_{delta J}(delta * v) for every parameter (v initialised if missing)."""
        for group in self.param_groups:
            for p in group["params"]:
                v = self._dual(p, group)
                p.copy_(prox(group["delta"] * v, *self._prox_args(group)))

    def _update_dual(self, p: torch.Tensor, v: torch.Tensor, group: dict) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """One Bregman step: update v from the gradient, then theta = prox(delta * v)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            reg_args = self._prox_args(group)
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Bregman optimizers do not support sparse gradients")
                v = self._dual(p, group)
                self._update_dual(p, v, group)
                p.copy_(prox(group["delta"] * v, *reg_args))
        return loss


class LinBreg(_Bregman):
    """Linearized Bregman iteration (Bungert et al., JMLR 2022, Alg. 1).

    v <- v - lr * grad;  theta <- prox_{delta J}(delta * v). Per group: lr, reg, lam, l2, delta.
    Without a regulariser theta = delta * v, i.e. plain SGD with step lr * delta.
    """

    def __init__(self, params: Iterable, lr: float = 0.1, reg: str | None = "l1",
                 lam: float = 1e-3, l2: float = 0.0, delta: float = 1.0) -> None:
        super().__init__(params, dict(lr=lr, reg=reg, lam=lam, l2=l2, delta=delta))

    def _update_dual(self, p: torch.Tensor, v: torch.Tensor, group: dict) -> None:
        v.add_(p.grad, alpha=-group["lr"])


class AdaBreg(_Bregman):
    """Adam-preconditioned Bregman iteration, AdaBreg (Bungert et al., JMLR 2022, Alg. 3).

    Adam's bias-corrected moments shape the step on v:
        m <- b1 m + (1-b1) g;  s <- b2 s + (1-b2) g^2
        v <- v - lr * (m / (1-b1^k)) / (sqrt(s / (1-b2^k)) + eps)
        theta <- prox_{delta J}(delta * v)
    With lam = 0 (or reg None) and delta = 1 this is exactly torch.optim.Adam.
    Used for SNNs by Windhager, Moser, Lunglmayr (Bregman-based sparse SNN training).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, reg: str | None = "l1", lam: float = 1e-3, l2: float = 0.0,
                 delta: float = 1.0) -> None:
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, reg=reg, lam=lam, l2=l2,
                                      delta=delta))

    def _update_dual(self, p: torch.Tensor, v: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        k = state["step"]
        grad = p.grad
        # Same operations, in the same order, as torch.optim.Adam's single-tensor path.
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** k
        bias_correction2 = 1 - beta2 ** k
        step_size = group["lr"] / bias_correction1
        denom = (state["exp_avg_sq"].sqrt() / math.sqrt(bias_correction2)).add_(group["eps"])
        v.addcdiv_(state["exp_avg"], denom, value=-step_size)


def default_regularized(name: str, p: torch.Tensor) -> bool:
    """Synaptic weights (tensors of 2 or more dims) are regularised; biases and neuron params not."""
    return p.dim() >= 2


def bregman_param_groups(model: nn.Module, lam: float, reg: str | None = "l1", l2: float = 0.0,
                         delta: float = 1.0,
                         regularized: Callable[[str, torch.Tensor], bool] = default_regularized
                         ) -> list[dict]:
    """Two parameter groups: the regularised weights (reg, lam) and the rest (reg None)."""
    on, off = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (on if regularized(name, p) else off).append(p)
    groups = [{"params": on, "reg": reg, "lam": lam, "l2": l2, "delta": delta}]
    if off:
        groups.append({"params": off, "reg": None, "lam": 0.0, "l2": 0.0, "delta": delta})
    return groups


@torch.no_grad()
def sparse_init_(params: Iterable[torch.Tensor], density: float, *, seed: int = 0,
                 structure: str = "element", rescale: bool = False) -> float:
    """Zero all but a random `density` fraction of each tensor (in place); returns the density.

    Bregman training starts sparse (Bungert et al. 2022, Sec. 4.2): each tensor keeps exactly
    round(density * n) entries (structure "element") or rows (structure "row", for the group
    regulariser), chosen uniformly with `seed`. With ``rescale`` the kept entries are scaled by
    1/sqrt(density) to keep the variance of a neuron's summed input. Call the optimizer's
    `init_dual()` afterwards (or let its first step do it) so that v is consistent with theta.
    """
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    if structure not in ("element", "row"):
        raise ValueError(f"structure must be 'element' or 'row', got {structure!r}")
    gen = torch.Generator().manual_seed(seed)
    kept = total = 0
    for p in params:
        n = p.shape[0] if structure == "row" and p.dim() >= 1 else p.numel()
        k = int(round(density * n))
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.randperm(n, generator=gen)[:k]] = True
        if structure == "row" and p.dim() >= 1:
            mask = mask.reshape((-1,) + (1,) * (p.dim() - 1)).expand_as(p)
        else:
            mask = mask.reshape(p.shape)
        p.mul_(mask.to(p.device))
        if rescale:
            p.mul_(1.0 / math.sqrt(density))
        kept += int(mask.sum())
        total += p.numel()
    return kept / total if total else 0.0
