"""Dollars, CO2e and SCI for a finding, through :mod:`greenflame.analyzer.impact`.

Lambda: the wasted time per invocation is the finding's share of the handler's wall time
(what Lambda bills) times the mean invocation duration, priced per GB-second
(:func:`impact.lambda_waste`). Services: the finding's samples as a share of the process's
CPU, times the measured CPU rate, priced per vCPU-hour of the platform
(:func:`impact.service_waste`). Every input is recorded in ``finding.inputs`` with its source.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from .. import impact
from ..model import CPU, WALL, Profile
from .base import AnalysisContext
from .finding import SERVICE_INPUTS, Co2Range, Finding, Inputs, Sci, Setting, TimeShare
from .lambda_facts import LambdaFacts, lambda_facts
from .scope import LAMBDA, Scope


def add_impact(
    finding: Finding,
    profile: Profile,
    context: AnalysisContext,
    scope: Scope,
    scope_cpu: int,
    scope_wall: int,
    site_cpu: int,
) -> None:
    """Fill ``finding``'s cost, CO2e, SCI and ``inputs`` for its kind of workload."""
    if scope.kind == LAMBDA:
        _lambda(finding, profile, context, scope, scope_wall)
    else:
        _service(finding, profile, context, scope, site_cpu)


def _time_share(finding: Finding) -> TimeShare:
    if finding.wall_share is not None:
        return TimeShare(finding.wall_share, WALL)
    return TimeShare(finding.share, finding.sample_type)


def _lambda(finding: Finding, profile: Profile, context: AnalysisContext, scope: Scope, scope_wall: int) -> None:
    facts = lambda_facts(profile, context)
    time_share = _time_share(finding)
    inputs = facts.to_inputs(scope.describe())
    inputs.time_share = time_share
    finding.inputs = inputs
    mean = facts.mean_duration_ms or _estimated_mean(profile, facts, scope_wall)
    if mean is None:
        inputs.notes.append("no invocation durations in the profile: cost and CO2e not estimated")
        return
    inputs.mean_duration_ms = mean
    finding.wasted_ms_per_invocation = time_share.value * mean.value
    rate = facts.invocations_per_month
    if rate is None:
        inputs.notes.append("no invocation rate: pass --invocations-per-month to estimate cost and CO2e")
        return
    waste = impact.lambda_waste(
        finding.wasted_ms_per_invocation,
        rate.value,
        facts.memory_mb.value,
        facts.architecture.value,
        facts.region.value,
        mean_duration_ms=mean.value,
    )
    finding.cost_usd_per_month = waste.cost_usd_per_month
    _carbon(finding, waste.co2e_kg_per_month)
    finding.sci_g_per_invocation = Sci(waste.sci_g_before, waste.sci_g_after)
    inputs.vcpu_hours_per_month = waste.vcpu_hours_per_month
    inputs.energy_kwh_per_month = waste.energy_kwh_per_month


def _estimated_mean(profile: Profile, facts: LambdaFacts, scope_wall: int) -> Optional[Setting]:
    """Handler wall time per invocation from wall sample counts times the sampling period."""
    if not facts.invocations or not profile.has_type(WALL) or profile.sample_period_ns <= 0:
        return None
    if profile.sample_types[profile.value_index(WALL)].unit != "samples":
        return None
    return Setting(scope_wall * profile.sample_period_ns / 1e6 / facts.invocations, "estimated")


def _carbon(finding: Finding, carbon: impact.Carbon) -> None:
    finding.co2e_kg_per_month_range = Co2Range(carbon.low, carbon.central, carbon.high)
    finding.inputs.co2e_kg_per_month_operational = carbon.operational
    finding.inputs.co2e_kg_per_month_embodied = carbon.embodied
    finding.inputs.estimated = True


def _service(finding: Finding, profile: Profile, context: AnalysisContext, scope: Scope, site_cpu: int) -> None:
    region = context.region.strip() if context.region else impact.DEFAULT_REGION
    platform = context.platform or impact.DEFAULT_SERVICE_PLATFORM
    notes: List[str] = []
    if not context.region:
        notes.append(f"no region for a service profile: assumed {region} (pass --region)")
    if not context.platform:
        notes.append(f"no platform given: priced as {platform}")
    inputs = Inputs(
        kind=SERVICE_INPUTS,
        scope=scope.describe(),
        region=Setting(region, "override" if context.region else "default"),
        platform=Setting(platform, "override" if context.platform else "default"),
        grid_g_co2e_per_kwh=impact.grid_factor(region)[0],
        notes=notes,
    )
    finding.inputs = inputs
    rate = _cpu_rate(profile, notes)
    if rate is None:
        return
    total_cpu, cpu_rate = rate
    cpu_share = site_cpu / total_cpu
    requests = context.requests_per_month
    if requests is None:
        notes.append("no request rate: pass the requests per month for SCI per request")
    waste = impact.service_waste(
        cpu_share,
        cpu_rate,
        requests,
        platform_name=platform,
        region=region,
        usd_per_vcpu_hour=context.usd_per_vcpu_hour,
    )
    inputs.process_cpu_share = cpu_share
    inputs.cpu_rate_vcpus = cpu_rate
    inputs.usd_per_vcpu_hour = Setting(waste.usd_per_vcpu_hour, waste.price_source)
    inputs.vcpu_hours_per_month = waste.vcpu_hours_per_month
    inputs.energy_kwh_per_month = waste.energy_kwh_per_month
    inputs.requests_per_month = Setting(requests, "override") if requests else None
    finding.cost_usd_per_month = waste.cost_usd_per_month
    _carbon(finding, waste.co2e_kg_per_month)
    finding.sci_g_per_request = Sci(waste.sci_g_per_request_before, waste.sci_g_per_request_after)


def _cpu_rate(profile: Profile, notes: List[str]) -> Optional[Tuple[int, float]]:
    """``(process CPU samples, mean busy vCPUs)``, or None (with a note) when not measurable."""
    if not profile.has_type(CPU) or profile.sample_types[profile.value_index(CPU)].unit != "samples":
        notes.append("no cpu sample counts: cost and CO2e not estimated")
        return None
    total = profile.total(CPU)
    if total <= 0 or profile.duration_ns <= 0 or profile.sample_period_ns <= 0:
        notes.append("no CPU samples, window or sampling period: cost and CO2e not estimated")
        return None
    return total, impact.measured_cpu_rate(total, profile.sample_period_ns, profile.duration_ns / 1e9)
