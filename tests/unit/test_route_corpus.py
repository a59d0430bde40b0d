"""The route entries' rules of the CLI (``provision.cluster.routes``) against the corpus that
the router's rules (``lua/helpers.lua``) are tested against too (``tests/lua/``)."""

from __future__ import annotations

import pytest

from provision.cluster.routes import validate, validate_endpoint, validate_prefix
from provision.errors import ConfigError
from tests.helpers import ROUTE_CORPUS

PREFIXES, SERVICES, ENDPOINTS = (ROUTE_CORPUS[k] for k in ("prefixes", "services", "endpoints"))


@pytest.mark.parametrize("prefix", PREFIXES["valid"])
def test_a_valid_prefix_is_taken(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", PREFIXES["invalid"])
def test_an_invalid_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigError):
        validate_prefix(prefix)


@pytest.mark.parametrize("service", SERVICES["valid"])
def test_a_valid_service_is_taken(service: str) -> None:
    validate("/x", service, [])


@pytest.mark.parametrize("service", SERVICES["invalid"])
def test_an_invalid_service_is_refused(service: str) -> None:
    with pytest.raises(ConfigError, match="service"):
        validate("/x", service, [])


@pytest.mark.parametrize("endpoint", ENDPOINTS["valid"])
def test_a_valid_endpoint_is_taken(endpoint: str) -> None:
    assert validate_endpoint(endpoint) == endpoint


@pytest.mark.parametrize("endpoint", ENDPOINTS["invalid"])
def test_an_invalid_endpoint_is_refused_even_where_local_ones_are_allowed(endpoint: str) -> None:
    with pytest.raises(ConfigError):
        validate_endpoint(endpoint, allow_local=True)


@pytest.mark.parametrize("endpoint", ENDPOINTS["local"])
def test_a_local_endpoint_needs_allow_local(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="loopback or link-local"):
        validate_endpoint(endpoint)
    assert validate_endpoint(endpoint, allow_local=True) == endpoint
