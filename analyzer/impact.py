"""Cost and carbon of wasted compute: every coefficient greenflame uses, in one place.

Each constant names its source and the date it was gathered (see
``docs/impact.md`` for the derivations and ``/reference/impact.md`` in the design
notes for the raw figures). Functions are pure: numbers in, numbers out.

Units are in the names: ``_ms``, ``_s`` (seconds), ``_mb``, ``_kwh``, ``_g``
(grams CO2e), ``_usd``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Optional, Tuple

# -- time -----------------------------------------------------------------------

#: Hours in a month as AWS prices them (730 = 8,760 h / 12). AWS pricing pages, 2026-11.
HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0

# -- AWS Lambda (us-east-1, on-demand) ----------------------------------------------

X86_64 = "x86_64"
ARM64 = "arm64"
ARCHITECTURES = (X86_64, ARM64)

#: Duration price per GB-second, first tier (6 billion GB-s x86, 7.5 billion arm64 per
#: month). AWS Lambda pricing page, us-east-1, gathered 2026-11. Higher tiers are cheaper
#: (x86 $0.000015 then $0.0000133334; arm $0.0000120001 then $0.0000106667; secondary
#: sources, 2026-11): first-tier prices overstate the saving only for accounts past 6e9 GB-s.
LAMBDA_USD_PER_GB_SECOND: Dict[str, float] = {X86_64: 0.0000166667, ARM64: 0.0000133334}
LAMBDA_USD_PER_GB_SECOND_TIER2: Dict[str, float] = {X86_64: 0.000015, ARM64: 0.0000120001}
LAMBDA_USD_PER_GB_SECOND_TIER3: Dict[str, float] = {X86_64: 0.0000133334, ARM64: 0.0000106667}
#: Request price, AWS Lambda pricing page, 2026-11. Not used for waste: removing wasted
#: time from a handler does not change the number of requests.
LAMBDA_USD_PER_MILLION_REQUESTS = 0.20
#: Free tier per month (requests, GB-seconds). AWS Lambda pricing page, 2026-11. Not
#: subtracted: a saving is worth the same whether or not an account is past the free tier
#: in a given month, and most accounts with a cost worth fixing are past it.
LAMBDA_FREE_REQUESTS_PER_MONTH = 1_000_000
LAMBDA_FREE_GB_SECONDS_PER_MONTH = 400_000
#: Lambda gives one vCPU per 1,769 MB of memory, at most 6 vCPUs; memory 128-10,240 MB.
#: AWS Lambda developer guide ("Memory and computing power"), 2026-11.
LAMBDA_MB_PER_VCPU = 1769.0
LAMBDA_MAX_VCPUS = 6.0
LAMBDA_MIN_MEMORY_MB = 128
LAMBDA_MAX_MEMORY_MB = 10240
#: Lambda's defaults when a function does not say otherwise (AWS console defaults, 2026-11).
DEFAULT_LAMBDA_MEMORY_MB = 128
DEFAULT_ARCHITECTURE = X86_64
DEFAULT_REGION = "us-east-1"
#: Invocations a month assumed when neither the user nor observed traffic gives a rate and the
#: profile's own rate is no traffic rate (``greenflame lambda invoke`` runs invocations back to
#: back): one million, Lambda's monthly free-tier request allowance (AWS Lambda pricing page,
#: 2026-11), a round figure for a small production function. Always marked ``assumed``.
ASSUMED_INVOCATIONS_PER_MONTH = 1_000_000.0

# -- energy (Cloud Carbon Footprint, "CCF") -----------------------------------------

#: AWS average min/max watts per vCPU: CCF packages/aws/src/domain/
#: AwsFootprintEstimationConstants.ts, gathered 2026-11. Lambda does not say which x86
#: hosts it runs on, so x86_64 uses the AWS average.
AWS_AVERAGE_WATTS_PER_VCPU: Tuple[float, float] = (0.74, 3.5)
#: Min/max watts per vCPU by microarchitecture: ccf-coefficients
#: output/coefficients-aws-use.csv, gathered 2026-11.
MICROARCHITECTURE_WATTS_PER_VCPU: Dict[str, Tuple[float, float]] = {
    "skylake": (0.65, 4.26),
    "cascade-lake": (0.64, 3.97),
    "broadwell": (0.71, 3.69),
    "haswell": (1.0, 4.74),
    "epyc-2nd-gen": (0.47, 1.69),
    "graviton": (0.47, 1.69),
    "ice-lake": (0.77, 3.76),
    "sapphire-rapids": (1.04, 4.16),
}
#: Watts per vCPU used for each Lambda architecture: arm64 Lambda runs on Graviton.
WATTS_PER_VCPU: Dict[str, Tuple[float, float]] = {
    X86_64: AWS_AVERAGE_WATTS_PER_VCPU,
    ARM64: MICROARCHITECTURE_WATTS_PER_VCPU["graviton"],
}
#: CCF's default CPU utilisation when none is measured (CCF methodology, 2026-11).
DEFAULT_UTILISATION = 0.5
#: Memory energy, kWh per GB-hour (CCF methodology, 2026-11). Not added to Lambda
#: estimates: see docs/impact.md ("Memory").
MEMORY_KWH_PER_GB_HOUR = 0.000392
#: Power usage effectiveness for AWS in CCF (2026-11). AWS itself reported 1.15 for
#: 2023-24 and 1.14 for 2025 (AWS sustainability report), within 1.5% of this value.
PUE_AWS = 1.135
#: Embodied emissions per vCPU-hour for m5-class hosts, g CO2e: central 0.48, range
#: 0.40-0.59. CCF EmbodiedEmissionsEstimator.ts and AWSInstanceTypes.ts, 2026-11.
EMBODIED_G_PER_VCPU_HOUR = 0.48
EMBODIED_G_PER_VCPU_HOUR_LOW = 0.40
EMBODIED_G_PER_VCPU_HOUR_HIGH = 0.59
#: Spread of energy per vCPU-hour between respected calculators, as multiples of the CCF
#: central value (Elastic Universal Profiling 7 W x86 / 2.8 W arm per core; Teads dataset
#: 4.4-8.0 Wh per vCPU-hour), gathered 2026-11.
ENERGY_SPREAD_LOW = 0.5
ENERGY_SPREAD_HIGH = 3.3

# -- grid emission factors, location-based, g CO2e per kWh --------------------------

#: CCF application table (updated 2022-06; gathered 2026-11). Sources: EPA eGRID2020 (US),
#: EEA (EU), carbonfootprint.com 2021 data (others). Market-based factors are not used:
#: the SCI specification excludes them.
GRID_G_PER_KWH: Dict[str, float] = {
    "us-east-1": 379.1,
    "us-east-2": 410.6,
    "us-west-1": 322.2,
    "us-west-2": 322.2,
    "ca-central-1": 120.0,
    "sa-east-1": 61.7,
    "eu-west-1": 278.6,
    "eu-west-2": 225.0,
    "eu-west-3": 51.1,
    "eu-central-1": 311.0,
    "eu-south-1": 213.4,
    "eu-north-1": 8.8,
    "ap-southeast-1": 408.0,
    "ap-southeast-2": 760.0,
    "ap-southeast-3": 717.7,
    "ap-northeast-1": 465.8,
    "ap-northeast-2": 415.6,
    "ap-northeast-3": 465.8,
    "ap-south-1": 708.2,
    "ap-east-1": 710.0,
    "af-south-1": 900.6,
    "me-south-1": 505.9,
    "me-central-1": 404.1,
    "cn-north-1": 537.4,
    "cn-northwest-1": 537.4,
}
#: CCF's factor for any region not in the table (2022-06; gathered 2026-11).
DEFAULT_GRID_G_PER_KWH = 392.8


# -- containers and instances (us-east-1, on-demand) --------------------------------

#: Fargate price per vCPU-hour and per GB-hour, us-east-1 on-demand, Linux. Secondary
#: sources (third-party copies of the AWS Fargate pricing page), gathered 2026-11: defaults
#: a user can override (``usd_per_vcpu_hour=``), and reports say so.
FARGATE_USD_PER_VCPU_HOUR: Dict[str, float] = {X86_64: 0.04048, ARM64: 0.03238}
FARGATE_USD_PER_GB_HOUR: Dict[str, float] = {X86_64: 0.004445, ARM64: 0.00356}
#: EC2 on-demand price per vCPU-hour (instance price / vCPUs; the same for every size of a
#: family), us-east-1, Linux. Secondary sources, gathered 2026-11; overridable.
EC2_USD_PER_VCPU_HOUR: Dict[str, float] = {"m7i": 0.0504, "m7g": 0.0408, "m6i": 0.048, "m5": 0.048}
#: Whether the service prices above come from a secondary source (they do, 2026-11).
SERVICE_PRICES_SECONDARY = True


@dataclass(frozen=True)
class Platform:
    """Where a long-running service runs: its vCPU price and the CPUs' power figures."""

    name: str
    usd_per_vcpu_hour: float
    microarchitecture: str
    watts_per_vcpu: Tuple[float, float]
    price_source: str


def _platform(name: str, price: float, microarchitecture: str, source: str) -> Platform:
    watts = AWS_AVERAGE_WATTS_PER_VCPU
    if microarchitecture != "aws-average":
        watts = MICROARCHITECTURE_WATTS_PER_VCPU[microarchitecture]
    return Platform(name, price, microarchitecture, watts, source)


_SECONDARY = "us-east-1 on-demand, secondary source, 2026-11"
#: Service platforms by name. Fargate does not say which x86 hosts it uses, so its x86 power
#: figures are CCF's AWS average (like Lambda's); arm64 Fargate and m7g run on Graviton;
#: m7i on Sapphire Rapids, m6i on Ice Lake; m5 runs on Skylake (8175M) or Cascade Lake
#: (8259CL) hosts, and Skylake's higher maximum is used.
SERVICE_PLATFORMS: Dict[str, Platform] = {
    p.name: p
    for p in (
        _platform("fargate-x86_64", FARGATE_USD_PER_VCPU_HOUR[X86_64], "aws-average", _SECONDARY),
        _platform("fargate-arm64", FARGATE_USD_PER_VCPU_HOUR[ARM64], "graviton", _SECONDARY),
        _platform("ec2-m7i", EC2_USD_PER_VCPU_HOUR["m7i"], "sapphire-rapids", _SECONDARY),
        _platform("ec2-m7g", EC2_USD_PER_VCPU_HOUR["m7g"], "graviton", _SECONDARY),
        _platform("ec2-m6i", EC2_USD_PER_VCPU_HOUR["m6i"], "ice-lake", _SECONDARY),
        _platform("ec2-m5", EC2_USD_PER_VCPU_HOUR["m5"], "skylake", _SECONDARY),
    )
}
DEFAULT_SERVICE_PLATFORM = "fargate-x86_64"


# -- Lambda compute -------------------------------------------------------------


def check_architecture(arch: str) -> str:
    """Return ``arch`` if it is a Lambda architecture, else raise ValueError."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected x86_64 or arm64")
    return arch


def check_memory_mb(memory_mb: float) -> float:
    """Return ``memory_mb`` if Lambda allows it (128-10,240 MB), else raise ValueError."""
    if not LAMBDA_MIN_MEMORY_MB <= memory_mb <= LAMBDA_MAX_MEMORY_MB:
        raise ValueError(
            f"memory {memory_mb:g} MB is outside Lambda's {LAMBDA_MIN_MEMORY_MB}-{LAMBDA_MAX_MEMORY_MB} MB"
        )
    return memory_mb


def lambda_vcpus(memory_mb: float) -> float:
    """vCPUs Lambda allocates to a function with ``memory_mb`` (1,769 MB = 1 vCPU, at most 6)."""
    return min(check_memory_mb(memory_mb) / LAMBDA_MB_PER_VCPU, LAMBDA_MAX_VCPUS)


def gb_seconds(seconds: float, memory_mb: float) -> float:
    """Billed GB-seconds for ``seconds`` of duration at ``memory_mb`` (Lambda's GB is 1,024 MB)."""
    return seconds * check_memory_mb(memory_mb) / 1024.0


def lambda_duration_cost_usd(seconds: float, memory_mb: float, arch: str = DEFAULT_ARCHITECTURE) -> float:
    """Duration cost in USD of ``seconds`` of Lambda time (first-tier price; requests excluded)."""
    return gb_seconds(seconds, memory_mb) * LAMBDA_USD_PER_GB_SECOND[check_architecture(arch)]


def lambda_vcpu_hours(seconds: float, memory_mb: float) -> float:
    """vCPU-hours reserved by ``seconds`` of Lambda duration at ``memory_mb``."""
    return seconds * lambda_vcpus(memory_mb) / 3600.0


# -- energy and carbon ----------------------------------------------------------


def energy_kwh(
    vcpu_hours: float,
    arch: str = DEFAULT_ARCHITECTURE,
    utilisation: float = DEFAULT_UTILISATION,
    pue: float = PUE_AWS,
    watts: Optional[Tuple[float, float]] = None,
) -> float:
    """CCF compute energy: ``(minW + u * (maxW - minW)) * vCPU-hours * PUE / 1000``.

    ``watts`` (min, max per vCPU) replaces the figures of the Lambda architecture ``arch``.
    """
    if not 0.0 <= utilisation <= 1.0:
        raise ValueError(f"utilisation {utilisation} is outside 0-1")
    min_w, max_w = watts if watts is not None else WATTS_PER_VCPU[check_architecture(arch)]
    return (min_w + utilisation * (max_w - min_w)) * vcpu_hours * pue / 1000.0


def grid_factor(region: str) -> Tuple[float, bool]:
    """``(g CO2e per kWh, known)`` for an AWS region; unknown regions get CCF's default."""
    factor = GRID_G_PER_KWH.get(region)
    if factor is None:
        return DEFAULT_GRID_G_PER_KWH, False
    return factor, True


@dataclass(frozen=True)
class Carbon:
    """CO2e: operational and embodied central values and a low/central/high range.

    The unit is the caller's: :func:`carbon_g` returns grams, ``scaled(0.001)`` kilograms.
    """

    operational: float
    embodied: float
    low: float
    central: float
    high: float

    def scaled(self, factor: float) -> Carbon:
        """The same estimate multiplied by ``factor`` (for example grams to kilograms)."""
        return Carbon(*(value * factor for value in asdict(self).values()))


def carbon_g(
    vcpu_hours: float,
    region: str,
    arch: str = DEFAULT_ARCHITECTURE,
    *,
    watts: Optional[Tuple[float, float]] = None,
    utilisation: float = DEFAULT_UTILISATION,
) -> Carbon:
    """Operational plus embodied CO2e of ``vcpu_hours`` in ``region``, with its range.

    low = operational x 0.5 + embodied at 0.40 g/vCPU-h; high = operational x 3.3 +
    embodied at 0.59 g/vCPU-h (see docs/impact.md). ``watts`` and ``utilisation`` are
    passed to :func:`energy_kwh`.
    """
    factor, _ = grid_factor(region)
    operational = energy_kwh(vcpu_hours, arch, utilisation, watts=watts) * factor
    embodied = vcpu_hours * EMBODIED_G_PER_VCPU_HOUR
    return Carbon(
        operational=operational,
        embodied=embodied,
        low=operational * ENERGY_SPREAD_LOW + vcpu_hours * EMBODIED_G_PER_VCPU_HOUR_LOW,
        central=operational + embodied,
        high=operational * ENERGY_SPREAD_HIGH + vcpu_hours * EMBODIED_G_PER_VCPU_HOUR_HIGH,
    )


def sci_g_per_invocation(duration_ms: float, memory_mb: float, region: str, arch: str = DEFAULT_ARCHITECTURE) -> float:
    """Software Carbon Intensity ``((E * I) + M) / R`` with R = one invocation, central values."""
    if duration_ms < 0:
        raise ValueError(f"duration {duration_ms} ms is negative")
    return carbon_g(lambda_vcpu_hours(duration_ms / 1000.0, memory_mb), region, arch).central


# -- the impact of wasted Lambda time -------------------------------------------


@dataclass(frozen=True)
class LambdaWaste:
    """What ``wasted_ms`` per invocation costs a month, and SCI before and after the fix."""

    wasted_s_per_month: float
    gb_seconds_per_month: float
    cost_usd_per_month: float
    vcpu_hours_per_month: float
    energy_kwh_per_month: float
    co2e_kg_per_month: Carbon
    sci_g_before: Optional[float]
    sci_g_after: Optional[float]


def lambda_waste(
    wasted_ms_per_invocation: float,
    invocations_per_month: float,
    memory_mb: float,
    arch: str = DEFAULT_ARCHITECTURE,
    region: str = DEFAULT_REGION,
    mean_duration_ms: Optional[float] = None,
) -> LambdaWaste:
    """Monthly cost and CO2e of ``wasted_ms_per_invocation`` over ``invocations_per_month``.

    SCI before and after is given when the mean invocation duration is known: before is
    the mean invocation, after is the mean less the wasted time.
    """
    if wasted_ms_per_invocation < 0 or invocations_per_month < 0:
        raise ValueError("wasted time and invocations must not be negative")
    seconds = wasted_ms_per_invocation / 1000.0 * invocations_per_month
    vcpu_hours = lambda_vcpu_hours(seconds, memory_mb)
    before = after = None
    if mean_duration_ms is not None:
        before = sci_g_per_invocation(mean_duration_ms, memory_mb, region, arch)
        after = sci_g_per_invocation(max(mean_duration_ms - wasted_ms_per_invocation, 0.0), memory_mb, region, arch)
    return LambdaWaste(
        wasted_s_per_month=seconds,
        gb_seconds_per_month=gb_seconds(seconds, memory_mb),
        cost_usd_per_month=lambda_duration_cost_usd(seconds, memory_mb, arch),
        vcpu_hours_per_month=vcpu_hours,
        energy_kwh_per_month=energy_kwh(vcpu_hours, arch),
        co2e_kg_per_month=carbon_g(vcpu_hours, region, arch).scaled(0.001),
        sci_g_before=before,
        sci_g_after=after,
    )


# -- the impact of wasted CPU in a long-running service --------------------------


def platform(name: str) -> Platform:
    """The service platform called ``name`` (see :data:`SERVICE_PLATFORMS`); ValueError if unknown."""
    try:
        return SERVICE_PLATFORMS[name]
    except KeyError:
        known = ", ".join(sorted(SERVICE_PLATFORMS))
        raise ValueError(f"unknown platform {name!r}: expected one of {known}") from None


def measured_cpu_rate(cpu_samples: float, sample_period_ns: float, window_s: float) -> float:
    """Mean vCPUs busy over the window: ``cpu samples x sampling period / window``.

    Each ``cpu`` sample is one thread seen on a CPU for one sampling period, so the
    product is CPU-seconds; over a window of ``window_s`` seconds it is busy vCPUs.
    """
    if cpu_samples < 0 or sample_period_ns <= 0 or window_s <= 0:
        raise ValueError("need cpu samples >= 0, a sampling period > 0 and a window > 0 to measure a CPU rate")
    return cpu_samples * sample_period_ns / 1e9 / window_s


def monthly_rate(count: float, window_s: float) -> float:
    """A count seen over ``window_s`` seconds, extrapolated to a 730-hour month."""
    if count < 0 or window_s <= 0:
        raise ValueError("need a count >= 0 and a window > 0 to extrapolate a monthly rate")
    return count / window_s * SECONDS_PER_MONTH


@dataclass(frozen=True)
class ServiceWaste:
    """What a share of a service's CPU costs a month, and SCI per request before and after."""

    platform: str
    usd_per_vcpu_hour: float
    price_source: str
    cpu_rate_vcpus: float
    vcpu_hours_per_month: float
    cost_usd_per_month: float
    energy_kwh_per_month: float
    co2e_kg_per_month: Carbon
    sci_g_per_request_before: Optional[float]
    sci_g_per_request_after: Optional[float]


def service_waste(
    cpu_share: float,
    cpu_rate_vcpus: float,
    requests_per_month: Optional[float] = None,
    *,
    platform_name: str = DEFAULT_SERVICE_PLATFORM,
    region: str = DEFAULT_REGION,
    usd_per_vcpu_hour: Optional[float] = None,
    utilisation: float = DEFAULT_UTILISATION,
) -> ServiceWaste:
    """Monthly cost and CO2e of ``cpu_share`` of a service's measured CPU, and SCI per request.

    ``cpu_rate_vcpus`` is the service's mean busy vCPUs (:func:`measured_cpu_rate`); the
    waste is ``cpu_share x cpu_rate x 730`` vCPU-hours a month, priced per vCPU-hour of
    ``platform_name`` (or ``usd_per_vcpu_hour``, which overrides the secondary-source
    default). SCI per request (R = one request) needs ``requests_per_month``: before is
    all the service's CPU, after the same without the wasted share.
    """
    if not 0.0 <= cpu_share <= 1.0:
        raise ValueError(f"cpu share {cpu_share} is outside 0-1")
    if cpu_rate_vcpus < 0:
        raise ValueError(f"cpu rate {cpu_rate_vcpus} vCPUs is negative")
    if requests_per_month is not None and not requests_per_month > 0:
        raise ValueError(f"requests per month must be above zero, got {requests_per_month}")
    if usd_per_vcpu_hour is not None and not usd_per_vcpu_hour >= 0:
        raise ValueError(f"price per vCPU-hour must not be negative, got {usd_per_vcpu_hour}")
    chosen = platform(platform_name)
    price = chosen.usd_per_vcpu_hour if usd_per_vcpu_hour is None else usd_per_vcpu_hour
    total_vcpu_hours = cpu_rate_vcpus * HOURS_PER_MONTH
    wasted = cpu_share * total_vcpu_hours

    def carbon(vcpu_hours: float) -> Carbon:
        return carbon_g(vcpu_hours, region, watts=chosen.watts_per_vcpu, utilisation=utilisation)

    before = after = None
    if requests_per_month is not None:
        before = carbon(total_vcpu_hours).central / requests_per_month
        after = carbon(total_vcpu_hours - wasted).central / requests_per_month
    return ServiceWaste(
        platform=chosen.name,
        usd_per_vcpu_hour=price,
        price_source=chosen.price_source if usd_per_vcpu_hour is None else "override",
        cpu_rate_vcpus=cpu_rate_vcpus,
        vcpu_hours_per_month=wasted,
        cost_usd_per_month=wasted * price,
        energy_kwh_per_month=energy_kwh(wasted, utilisation=utilisation, watts=chosen.watts_per_vcpu),
        co2e_kg_per_month=carbon(wasted).scaled(0.001),
        sci_g_per_request_before=before,
        sci_g_per_request_after=after,
    )
