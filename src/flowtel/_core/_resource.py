"""The Resource's identity (service name, version, environment, instance id) and the head
sampling rate, resolved from keywords and the ``OTEL_*`` variables; part of ``resolve()``."""

from __future__ import annotations

import uuid
from typing import Final

from flowtel._core._options import Options, _Unset
from flowtel._core._options import pick as pick_value
from flowtel._core._parse import (
    SAMPLERS,
    env,
    parse_choice,
    parse_float,
    parse_resource_attributes,
)
from flowtel.exceptions import ConfigurationError

__all__ = ["AUTO_INSTANCE_IDS", "head_sampling", "new_instance_id", "resolve_resource"]

AUTO_INSTANCE_IDS: Final[set[str]] = set()
"""The ``service.instance.id`` values flowtel generated (a forked child replaces these)."""


def new_instance_id() -> str:
    """A fresh ``service.instance.id``, remembered as generated (not chosen by the user)."""
    instance_id = str(uuid.uuid4())
    AUTO_INSTANCE_IDS.add(instance_id)
    return instance_id


def head_sampling(sample_rate: object) -> tuple[float, bool]:
    """Resolve (rate, parent_based) from ``sample_rate`` or ``OTEL_TRACES_SAMPLER[_ARG]``."""
    if not isinstance(sample_rate, _Unset) and sample_rate is not None:
        return parse_float("sample_rate", sample_rate, minimum=0.0, maximum=1.0), True
    raw = env("OTEL_TRACES_SAMPLER")
    if raw is None:
        return 1.0, True
    name = parse_choice("OTEL_TRACES_SAMPLER", raw, SAMPLERS)
    parent_based = name.startswith("parentbased_")
    kind = name.removeprefix("parentbased_")
    if kind == "always_on":
        return 1.0, parent_based
    if kind == "always_off":
        return 0.0, parent_based
    arg = env("OTEL_TRACES_SAMPLER_ARG")
    rate = 1.0 if arg is None else parse_float("OTEL_TRACES_SAMPLER_ARG", arg, minimum=0, maximum=1)
    return rate, parent_based


def resolve_resource(options: Options) -> tuple[dict[str, str], str, str | None, str | None]:
    """(resource attributes, service name, service version, environment)."""

    def pick(value: object, key: str, env_name: str | None, default: object) -> tuple[str, object]:
        src, picked = pick_value(value, env_name, default)
        return (src or key), picked

    resource: dict[str, str] = {}
    if env("OTEL_RESOURCE_ATTRIBUTES"):
        resource.update(
            parse_resource_attributes("OTEL_RESOURCE_ATTRIBUTES", env("OTEL_RESOURCE_ATTRIBUTES"))
        )
    given = options.resource_attributes
    if not isinstance(given, _Unset) and given is not None:
        resource.update(parse_resource_attributes("resource_attributes", given))

    opt, service_name = pick(options.service_name, "service_name", "OTEL_SERVICE_NAME", None)
    if service_name is None:
        service_name = resource.get("service.name") or "unknown_service"
    if not isinstance(service_name, str) or not service_name.strip():
        raise ConfigurationError(opt, service_name, "a non-empty string")

    opt, service_version = pick(
        options.service_version, "service_version", "FLOWTEL_SERVICE_VERSION", None
    )
    service_version = (
        service_version if service_version is not None else resource.get("service.version")
    )
    if service_version is not None and not isinstance(service_version, str):
        raise ConfigurationError(opt, service_version, "a string or None")

    opt, environment = pick(options.environment, "environment", "FLOWTEL_ENVIRONMENT", None)
    environment = (
        environment
        if environment is not None
        else resource.get("deployment.environment.name") or resource.get("deployment.environment")
    )
    if environment is not None and not isinstance(environment, str):
        raise ConfigurationError(opt, environment, "a string or None")

    resource["service.name"] = service_name.strip()
    if service_version:
        resource["service.version"] = service_version
    if environment:
        resource["deployment.environment.name"] = environment
    if "service.instance.id" not in resource:
        resource["service.instance.id"] = new_instance_id()

    return resource, service_name.strip(), service_version, environment
