"""The temporal module: gaps are key-padding masks, dates matter, the date head follows the event."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rsvlm_temporal.model.factory import create_model  # noqa: E402
from rsvlm_temporal.model.temporal import TemporalEncoder, sinusoid_days  # noqa: E402


def test_masked_dates_do_not_leak_into_the_output() -> None:
    torch.manual_seed(0)
    enc = TemporalEncoder(16, depth=2, heads=2).eval()
    tok = torch.randn(5, 9, 16)
    valid = torch.ones(5, 9, dtype=torch.bool)
    valid[:, [2, 3, 7]] = False  # cloud gaps
    days = torch.tensor([0, 3, 10, 11, 40, 41, 90, 200, 201], dtype=torch.float64) + 18000
    s1, h1 = enc(tok, valid, days)
    tok2 = tok.clone()
    tok2[:, [2, 3, 7]] = 1e3 * torch.randn(5, 3, 16)
    s2, h2 = enc(tok2, valid, days)
    assert torch.allclose(s1, s2, atol=1e-5)
    assert torch.allclose(h1[:, valid[0]], h2[:, valid[0]], atol=1e-5)
    # irregular steps: another day grid gives another result
    s3, _ = enc(tok, valid, days * 0 + torch.arange(9.0) * 30 + 18000)
    assert not torch.allclose(s1, s3, atol=1e-4)


def test_sinusoid_covers_days_since_reference_and_day_of_year() -> None:
    d = torch.tensor([18000.0, 18365.2425])
    e = sinusoid_days(d, 18000.0, 32)
    assert e.shape == (2, 32)
    assert torch.allclose(e[0, 16:], e[1, 16:], atol=1e-3)  # same day of year
    assert not torch.allclose(e[0, :16], e[1, :16], atol=1e-3)  # a year later


def _pixel_series(t: int, k: int) -> torch.Tensor:
    """A forest pixel that burns at step k (S2 bands of MODEL_BANDS, reflectance 0-1)."""
    from rsvlm_temporal.change import spectra
    from rsvlm_temporal.model.inputs import MODEL_BANDS

    sig = torch.from_numpy(spectra.signature_matrix("sentinel-2-l2a", MODEL_BANDS)).float()
    forest, burned = sig[spectra.MATERIAL_CODES["forest"]], sig[spectra.MATERIAL_CODES["burned"]]
    x = forest.repeat(t, 1)
    x[k:] = burned
    x = x + 0.003 * torch.randn(t, 10, generator=torch.Generator().manual_seed(k))
    return x[:, :, None, None]


def test_dates_matter_and_the_predicted_date_moves_with_the_event() -> None:
    m = create_model("temporal-tiny")  # the shipped trained weights
    t = 60
    days = torch.arange(t, dtype=torch.float64) * 5 + 18628  # 2021-01-01, every 5 days
    sensor = torch.zeros(t, dtype=torch.long)
    with torch.no_grad():
        a = m(_pixel_series(t, 35), sensor, days)
        b = m(_pixel_series(t, 45), sensor, days)
        shuffled = m(_pixel_series(t, 35), sensor, days[torch.randperm(t, generator=torch.Generator().manual_seed(1))])
    assert torch.sigmoid(a["mask_logit"]).item() > 0.5
    ia, ib = int(a["date_logit"][:, 0, 0].argmax()), int(b["date_logit"][:, 0, 0].argmax())
    assert abs(ia - 35) <= 2 and abs(ib - 45) <= 2, (ia, ib)  # within two 5-day revisits
    assert not torch.allclose(a["embedding"], shuffled["embedding"], atol=1e-4)
    assert not np.isclose(float(a["mask_logit"]), float(shuffled["mask_logit"]), atol=1e-5)
