"""Seed replay: subtracting DP-SGD's noise by regenerating it offline from the job's seed.

Measured before the fix: ``seed`` in ``POST /jobs/train`` seeded the generator that draws both the Poisson
batches and the noise. With σ = 50, q = 1 and one step, the released weights gave back the clipped gradient
sum to five decimals (−51.37551 against −51.37552), and two datasets differing in one label were told apart
with certainty. Now sampling and noise come from a source no user can seed: the same replay recovers a value
as far from the truth as the noise itself, and singles out neither neighbouring dataset.

The attacker here pays for the run (it is charged) and gets its weights released by an officer; everything
else happens offline with public code: the attacker's own re-generation of the noise from the seed, under
each way Opacus draws it.
"""

from __future__ import annotations

import torch
from safetensors.torch import load
from torch import nn

from gridctl import DP
from tests.attacks.conftest import Cluster, finished, refused, released

ROWS, FEATURES = 40, 3
SIGMA, CLIP, LR, SEED = 50.0, 1.0, 1.0, 20260101
NOISE_STD = SIGMA * CLIP


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    x = torch.rand(ROWS, FEATURES, generator=generator) * 2 - 1
    y = x @ torch.tensor([1.5, -2.0, 0.5]) + 0.1 * torch.randn(ROWS, generator=generator)
    return x, y


def _linear(model: nn.Sequential) -> nn.Linear:
    layer = model[0]
    assert isinstance(layer, nn.Linear)
    return layer


def _model() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(FEATURES, 1))
    with torch.no_grad():
        _linear(model).weight.copy_(torch.tensor([[0.1, -0.2, 0.3]]))
        _linear(model).bias.fill_(0.05)
    return model


def _flat(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.cat([weight.reshape(-1), bias.reshape(-1)]).double()


def _clipped_gradient_sum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """What DP-SGD adds noise to: the sum over rows of each row's gradient of (w·x + b - y)², clipped to C."""
    start = _linear(_model())
    w, b = start.weight.detach().double().reshape(-1), start.bias.detach().double()
    residual = 2 * (x.double() @ w + b - y.double())
    per_row = torch.cat([residual[:, None] * x.double(), residual[:, None]], dim=1)
    factor = (CLIP / (per_row.norm(dim=1) + 1e-6)).clamp(max=1.0)
    return (per_row * factor[:, None]).sum(dim=0)


def _replayed_noises(seed: int) -> list[torch.Tensor]:
    """The noise the Node would have drawn if ``seed`` seeded its generator, under each way it could draw it:
    after the Poisson mask or not, Opacus' plain or secure-mode Gaussian."""
    shapes = [(1, FEATURES), (1,)]
    found = []
    for mask_first in (True, False):
        for secure in (False, True):
            generator = torch.Generator().manual_seed(seed)
            if mask_first:
                torch.rand(ROWS, generator=generator)
            parts: list[torch.Tensor] = []
            for shape in shapes:
                if secure:
                    torch.normal(0, NOISE_STD, size=(1, 1), generator=generator)
                    draws = [torch.normal(0, NOISE_STD, size=shape, generator=generator) for _ in range(4)]
                    parts.append(torch.stack(draws).sum(dim=0) / 2)
                else:
                    parts.append(torch.normal(0, NOISE_STD, size=shape, generator=generator))
            found.append(torch.cat([parts[0].reshape(-1), parts[1].reshape(-1)]).double())
    return found


class TestSeedReplay:
    def test_replaying_the_seed_offline_recovers_neither_the_gradient_sum_nor_the_dataset(
            self, cluster: Cluster) -> None:
        x, y = _data()
        name, dataset_id = cluster.dataset("seeded", {"features": x, "labels": y})
        scientist, email = cluster.user("seed-attacker", budget=10.0)
        cluster.grant(email, dataset_id, "compute")
        submitted = None

        def submit() -> None:
            nonlocal submitted
            submitted = scientist.train(_model(), dataset=name, loss="mse", optimizer="sgd", lr=LR, epochs=1,
                                        batch_size=ROWS, dp=DP(noise_multiplier=SIGMA, max_grad_norm=CLIP),
                                        seed=SEED, initial_weights=True)

        refusal = refused(submit)
        if refusal is not None:  # a Node may refuse a seed on a DP job outright: then nothing is learned
            assert refusal.code == "invalid_input" and "seed" in refusal.message
            return
        assert submitted is not None
        assert finished(submitted).status == "succeeded", submitted.error
        weights = load(released(cluster, scientist, submitted.data["result_id"]))

        # The attacker's arithmetic: w1 = w0 - lr * (S + Z) / B with B = rows (q = 1), so S = (w0 - w1)·B/lr - Z.
        start = _linear(_model())
        moved = (_flat(start.weight.detach(), start.bias.detach())
                 - _flat(weights["0.weight"], weights["0.bias"])) * ROWS / LR
        truth = _clipped_gradient_sum(x, y)
        start_w, start_b = start.weight.detach().reshape(-1), float(start.bias.detach())
        neighbour_y = y.clone()
        neighbour_y[0] = 2 * (x[0] @ start_w + start_b) - y[0]  # one row's label differs: its residual flips sign
        neighbour = _clipped_gradient_sum(x, neighbour_y)
        assert (truth - neighbour).abs().max() > 0.5  # the two datasets' sums do differ

        for noise in _replayed_noises(SEED):
            recovered = moved - noise
            # Before the fix one of these replays landed within 1e-4 of the truth on every coordinate.
            assert (recovered - truth).abs().max() > 1.0
            assert (recovered - neighbour).abs().max() > 1.0  # neither dataset is singled out
