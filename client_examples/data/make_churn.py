"""Generate ``churn.csv``: a realistic-looking customer-churn table for trying ``advisor.profile`` on.

The table has 3,000 customers, a binary target ``churned`` (about 12% positives), an ID column
``customer_id``, numeric columns with some missing values, two categorical columns (``contract_type`` and
``payment_method``) and one constant column (``country``). Churn follows a logistic model: month-to-month
contracts, short tenure, high charges, many support calls and electronic-check payment raise it.

Run from the repository root to rewrite the committed file (the seed makes it byte-identical)::

    python client_examples/data/make_churn.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 2024
N_CUSTOMERS = 3_000
CHURN_RATE = 0.12
OUTPUT = Path(__file__).with_name("churn.csv")

CONTRACTS = ("Month-to-month", "One year", "Two year")
CONTRACT_SHARES = (0.55, 0.25, 0.20)
CONTRACT_EFFECT = (0.9, -0.4, -1.2)  # log-odds of churning, month-to-month riskiest
PAYMENTS = ("Electronic check", "Mailed check", "Bank transfer", "Credit card")
PAYMENT_SHARES = (0.34, 0.22, 0.22, 0.22)
PAYMENT_EFFECT = (0.4, 0.0, -0.1, -0.2)


def _with_missing(values: pd.Series, share: float, rng: np.random.Generator) -> pd.Series:
    """Blank out about ``share`` of the values at random, as a survey or billing gap would."""
    return values.mask(rng.random(len(values)) < share)


def _intercept_for_rate(logits: np.ndarray, rate: float) -> float:
    """The intercept that makes the mean churn probability equal ``rate`` (bisection; it is monotone)."""
    low, high = -20.0, 20.0
    for _ in range(100):
        middle = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(logits + middle)))) < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def make_churn(n_customers: int = N_CUSTOMERS, seed: int = SEED) -> pd.DataFrame:
    """The churn table.

    Parameters
    ----------
    n_customers : int
        Rows.
    seed : int
        Seed of numpy's default generator; the same seed gives the same table.

    Returns
    -------
    pandas.DataFrame
        One row per customer, ``churned`` (0/1) last.
    """
    rng = np.random.default_rng(seed)
    contract = rng.choice(len(CONTRACTS), size=n_customers, p=CONTRACT_SHARES)
    payment = rng.choice(len(PAYMENTS), size=n_customers, p=PAYMENT_SHARES)
    # Longer contracts go with longer tenure.
    tenure = np.clip(rng.gamma(1.2 + contract, 12.0), 0, 72).astype(int)
    age = np.clip(rng.normal(45, 15, n_customers), 18, 85).astype(int)
    senior = (age >= 65).astype(int)
    products = 1 + rng.binomial(4, 0.3, n_customers)
    monthly = np.round(np.clip(20 + 15 * products + rng.normal(0, 12, n_customers), 18.25, 119.0), 2)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.normal(1.0, 0.03, n_customers), 2)
    calls = rng.poisson(0.8 + 0.6 * (contract == 0), n_customers)
    usage = np.round(rng.lognormal(2.5, 0.8, n_customers), 1)

    logits = (
        np.take(CONTRACT_EFFECT, contract)
        + np.take(PAYMENT_EFFECT, payment)
        - 0.04 * tenure
        + 0.015 * (monthly - 70)
        + 0.35 * calls
        + 0.3 * senior
    )
    probability = 1 / (1 + np.exp(-(logits + _intercept_for_rate(logits, CHURN_RATE))))
    churned = (rng.random(n_customers) < probability).astype(int)

    frame = pd.DataFrame(
        {
            "customer_id": [f"CUST-{index:05d}" for index in rng.permutation(n_customers) + 1],
            "age": _with_missing(pd.Series(age, dtype="Int64"), 0.02, rng),
            "senior_citizen": senior,
            "tenure_months": tenure,
            "contract_type": np.take(CONTRACTS, contract),
            "payment_method": np.take(PAYMENTS, payment),
            "num_products": products,
            "monthly_charges": monthly,
            "total_charges": _with_missing(pd.Series(total), 0.03, rng),
            "support_calls": calls,
            "data_usage_gb": _with_missing(pd.Series(usage), 0.05, rng),
            "country": "US",
            "churned": churned,
        }
    )
    return frame


def main(path: Path = OUTPUT) -> None:
    """Write the table as CSV to ``path`` (default: ``churn.csv`` next to this script)."""
    make_churn().to_csv(path, index=False, lineterminator="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
