"""The impact model against the worked example in the reference notes, and its edge cases."""

from __future__ import annotations

import pytest

from greenflame.analyzer import impact


def close(actual: float, expected: float, rel: float = 0.01) -> bool:
    return abs(actual - expected) <= rel * abs(expected)


# 50 ms wasted per invocation, 512 MB, x86_64, us-east-1, 10 million invocations a month.
EXAMPLE = {"wasted_ms_per_invocation": 50, "invocations_per_month": 10e6, "memory_mb": 512}


def test_worked_example_cost() -> None:
    waste = impact.lambda_waste(**EXAMPLE, arch="x86_64", region="us-east-1")
    assert close(waste.gb_seconds_per_month, 250_000)
    assert close(waste.cost_usd_per_month, 4.17)
    arm = impact.lambda_waste(**EXAMPLE, arch="arm64", region="us-east-1")
    assert close(arm.cost_usd_per_month, 3.33)


def test_worked_example_compute_and_carbon() -> None:
    waste = impact.lambda_waste(**EXAMPLE, arch="x86_64", region="us-east-1")
    assert close(waste.vcpu_hours_per_month, 40.2)
    assert close(waste.energy_kwh_per_month, 0.0967)
    carbon = waste.co2e_kg_per_month
    assert close(carbon.operational, 0.037)
    assert close(carbon.central, 0.056)
    assert close(carbon.operational + carbon.embodied, carbon.central)


def test_worked_example_range() -> None:
    """greenflame's range (docs/impact.md) and how the reference's "about 0.02-0.14" differs."""
    carbon = impact.lambda_waste(**EXAMPLE, arch="x86_64", region="us-east-1").co2e_kg_per_month
    # By hand: 40.198 vCPU-h x 2.12 W x 1.135 / 1000 x 379.1 g/kWh = 36.67 g operational.
    operational_g = 40.198 * 2.12 * 1.135 / 1000 * 379.1
    assert close(carbon.operational * 1000, operational_g)
    assert close(carbon.low, (0.5 * operational_g + 40.198 * 0.40) / 1000)  # 0.0344 kg
    assert close(carbon.high, (3.3 * operational_g + 40.198 * 0.59) / 1000)  # 0.1447 kg
    assert close(carbon.low, 0.0344) and close(carbon.high, 0.1447)
    # The reference's bounds are reproduced by 0.5 x operational with no embodied part (0.0183,
    # "about 0.02" to one figure) and 3.3 x operational plus the central embodied part (0.1403).
    assert round(0.5 * carbon.operational, 2) == 0.02
    assert close(3.3 * carbon.operational + carbon.embodied, 0.14)


def test_energy_formula_is_ccf() -> None:
    kwh = impact.energy_kwh(10.0, "x86_64")
    assert close(kwh, (0.74 + 0.5 * (3.5 - 0.74)) * 10.0 * 1.135 / 1000)
    assert impact.energy_kwh(10.0, "arm64") < kwh
    assert close(impact.energy_kwh(1.0, utilisation=0.0, pue=1.0), 0.74 / 1000)
    with pytest.raises(ValueError):
        impact.energy_kwh(1.0, utilisation=1.5)


def test_vcpus_follow_memory_and_are_capped() -> None:
    assert close(impact.lambda_vcpus(1769), 1.0)
    # Proportional up to the largest size (5.79 vCPUs), never above the 6 vCPU cap.
    assert close(impact.lambda_vcpus(10240), 10240 / 1769) and impact.lambda_vcpus(10240) <= 6.0
    assert close(impact.lambda_vcpus(128), 128 / 1769)
    for bad in (0, 64, 10241):
        with pytest.raises(ValueError):
            impact.lambda_vcpus(bad)


def test_grid_factors() -> None:
    assert impact.grid_factor("us-east-1") == (379.1, True)
    assert impact.grid_factor("eu-north-1") == (8.8, True)
    assert impact.grid_factor("xx-nowhere-9") == (392.8, False)
    north = impact.carbon_g(10, "eu-north-1").operational
    south = impact.carbon_g(10, "ap-southeast-2").operational
    assert close(south / north, 760 / 8.8)


def test_sci_before_and_after() -> None:
    waste = impact.lambda_waste(**EXAMPLE, region="us-east-1", mean_duration_ms=200)
    assert waste.sci_g_before is not None and waste.sci_g_after is not None
    assert close(waste.sci_g_after / waste.sci_g_before, 150 / 200)
    # The saving per invocation times invocations is the monthly central estimate.
    saved_kg = (waste.sci_g_before - waste.sci_g_after) * EXAMPLE["invocations_per_month"] / 1000
    assert close(saved_kg, waste.co2e_kg_per_month.central)
    assert impact.lambda_waste(**EXAMPLE).sci_g_before is None


def test_zero_waste_costs_nothing_and_bad_input_is_refused() -> None:
    waste = impact.lambda_waste(0, 1e6, 128)
    assert waste.cost_usd_per_month == 0 and waste.co2e_kg_per_month.high == 0
    with pytest.raises(ValueError):
        impact.lambda_waste(-1, 1e6, 128)
    with pytest.raises(ValueError):
        impact.lambda_duration_cost_usd(1, 512, "sparc")


def test_every_region_factor_is_positive() -> None:
    assert all(value > 0 for value in impact.GRID_G_PER_KWH.values())
    assert impact.SECONDS_PER_MONTH == 730 * 3600


# -- services ---------------------------------------------------------------------

# 6,000 cpu samples at 10 ms over 60 s: 1 busy vCPU; 20% of it wasted; 10 million requests/month.
SERVICE = {"cpu_share": 0.2, "cpu_rate_vcpus": impact.measured_cpu_rate(6000, 10_000_000, 60.0)}


def test_measured_cpu_rate_and_monthly_rate() -> None:
    assert close(impact.measured_cpu_rate(6000, 10_000_000, 60.0), 1.0)
    assert close(impact.measured_cpu_rate(150, 10_000_000, 1.0), 1.5)  # threads on several CPUs
    assert impact.measured_cpu_rate(0, 10_000_000, 60.0) == 0
    assert close(impact.monthly_rate(100, 60.0), 100 / 60 * 730 * 3600)
    for bad in ((-1, 10_000_000, 60.0), (10, 0, 60.0), (10, 10_000_000, 0.0)):
        with pytest.raises(ValueError):
            impact.measured_cpu_rate(*bad)
    with pytest.raises(ValueError):
        impact.monthly_rate(5, 0)


def test_service_waste_on_fargate_x86_by_hand() -> None:
    waste = impact.service_waste(**SERVICE, requests_per_month=10e6)
    # 0.2 x 1 vCPU x 730 h = 146 vCPU-hours; x $0.04048 = $5.91.
    assert close(waste.vcpu_hours_per_month, 146.0)
    assert close(waste.cost_usd_per_month, 5.91)
    assert waste.price_source.endswith("secondary source, 2026-11")
    # 146 x 2.12 W x 1.135 / 1000 = 0.3513 kWh; x 379.1 = 133.2 g; embodied 146 x 0.48 = 70.1 g.
    assert close(waste.energy_kwh_per_month, 0.3513)
    carbon = waste.co2e_kg_per_month
    assert close(carbon.operational, 0.1332) and close(carbon.embodied, 0.07008)
    assert close(carbon.central, 0.2033)
    assert close(carbon.low, (0.5 * 133.2 + 146 * 0.40) / 1000)
    assert close(carbon.high, (3.3 * 133.2 + 146 * 0.59) / 1000)
    # SCI per request: 730 vCPU-h x (2.12 x 1.135 / 1000 x 379.1 + 0.48) g / 10 million requests.
    assert waste.sci_g_per_request_before is not None and waste.sci_g_per_request_after is not None
    assert close(waste.sci_g_per_request_before, 1.0163e-4)
    assert close(waste.sci_g_per_request_after, 0.8 * 1.0163e-4)


@pytest.mark.parametrize(
    ("name", "price", "watts_at_half"),
    [
        ("fargate-arm64", 0.03238, 1.08),  # Graviton 0.47-1.69 W
        ("ec2-m7i", 0.0504, 2.60),  # Sapphire Rapids 1.04-4.16 W
        ("ec2-m7g", 0.0408, 1.08),
        ("ec2-m6i", 0.048, 2.265),  # Ice Lake 0.77-3.76 W
        ("ec2-m5", 0.048, 2.455),  # Skylake 0.65-4.26 W
    ],
)
def test_service_platforms_by_hand(name: str, price: float, watts_at_half: float) -> None:
    waste = impact.service_waste(**SERVICE, platform_name=name, region="eu-west-1")
    assert close(waste.cost_usd_per_month, 146 * price)
    assert close(waste.co2e_kg_per_month.operational, 146 * watts_at_half * 1.135 / 1000 * 278.6 / 1000)
    assert waste.sci_g_per_request_before is None and waste.sci_g_per_request_after is None


def test_service_price_override_and_bad_input() -> None:
    waste = impact.service_waste(**SERVICE, platform_name="ec2-m7g", usd_per_vcpu_hour=0.03)
    assert close(waste.cost_usd_per_month, 146 * 0.03) and waste.price_source == "override"
    # The override changes money only: the power figures are still Graviton's.
    assert waste.co2e_kg_per_month == impact.service_waste(**SERVICE, platform_name="ec2-m7g").co2e_kg_per_month
    bad_inputs = [
        {"cpu_share": 1.5, "cpu_rate_vcpus": 1.0},
        {"cpu_share": 0.1, "cpu_rate_vcpus": -1.0},
        {"cpu_share": 0.1, "cpu_rate_vcpus": 1.0, "requests_per_month": 0},
        {"cpu_share": 0.1, "cpu_rate_vcpus": 1.0, "usd_per_vcpu_hour": -0.01},
        {"cpu_share": 0.1, "cpu_rate_vcpus": 1.0, "platform_name": "ec2-z9"},
    ]
    for kwargs in bad_inputs:
        with pytest.raises(ValueError):
            impact.service_waste(**kwargs)  # type: ignore[arg-type]


def test_service_saving_matches_sci_difference() -> None:
    waste = impact.service_waste(**SERVICE, requests_per_month=2e6, region="ap-southeast-2")
    assert waste.sci_g_per_request_before is not None and waste.sci_g_per_request_after is not None
    saved_kg = (waste.sci_g_per_request_before - waste.sci_g_per_request_after) * 2e6 / 1000
    assert close(saved_kg, waste.co2e_kg_per_month.central)
    nothing = impact.service_waste(0.0, 3.0, 1e6)
    assert nothing.cost_usd_per_month == 0 and nothing.co2e_kg_per_month.high == 0
    assert nothing.sci_g_per_request_before == nothing.sci_g_per_request_after


def test_every_constant_has_a_source_and_date() -> None:
    """Each public constant of the module is documented with a source and the date gathered."""
    import inspect

    source = inspect.getsource(impact)
    for name in ("FARGATE_USD_PER_VCPU_HOUR", "EC2_USD_PER_VCPU_HOUR", "PUE_AWS", "GRID_G_PER_KWH"):
        comment = source[: source.index(f"\n{name}")].rsplit("\n\n", 1)[-1]
        assert "2026-11" in comment, name
