"""docker_stack's stack file, made from the real compose files of the playbooks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from provision.tasks.docker_stack import STACK_VERSION, merge, parse_read, parse_specs, stack_file

FILES = Path(__file__).resolve().parents[2] / "playbooks" / "files"


def _read(component: str, names: list[str], specs: str = "") -> str:
    """What READ prints on a host holding the project folder as the playbook uploads it."""
    root = FILES / component
    out = [f"=== file {n}\n{(root / n).read_text()}" for n in names]
    out.append("=== hashes")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out.append(f"{digest}  ./{path.relative_to(root)}")
    out.append(f"=== specs\n{specs}")
    return "\n".join(out)


def _stack(component: str) -> dict:
    names = ["docker-compose.yml", "stack.yml"]
    text = stack_file(component, names, parse_read(_read(component, names)))
    assert text.startswith(f'version: "{STACK_VERSION}"\n')
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def test_openresty_global_host_port_and_configs_for_every_mounted_file() -> None:
    doc = _stack("openresty")
    svc = doc["services"]["openresty"]
    assert svc["deploy"]["mode"] == "global"
    assert svc["ports"] == [{"target": 80, "published": "${HTTP_PORT:-80}", "protocol": "tcp",
                             "mode": "host"}]  # fmt: skip
    assert "volumes" not in svc and "restart" not in svc
    targets = {c["target"] for c in svc["configs"]}
    lua = {f"/usr/local/openresty/lua/{p.name}" for p in (FILES / "openresty/lua").glob("*.lua")}
    assert targets == {"/usr/local/openresty/nginx/conf/nginx.conf", *lua}
    for used in svc["configs"]:
        assert doc["configs"][used["source"]]["name"].startswith("openresty_")
    assert svc["secrets"] == ["redis_env"]
    assert doc["networks"]["default"]["external"] is True


def test_a_changed_file_is_a_new_config_name_so_the_spec_changes() -> None:
    names = ["docker-compose.yml", "stack.yml"]
    raw = _read("openresty", names)
    before = yaml.safe_load(stack_file("o", names, parse_read(raw)))
    digest = hashlib.sha256((FILES / "openresty/nginx.conf").read_bytes()).hexdigest()
    after = yaml.safe_load(stack_file("o", names, parse_read(raw.replace(digest, "f" * 64))))
    assert set(before["configs"]) != set(after["configs"])
    assert len(set(before["configs"]) & set(after["configs"])) == len(before["configs"]) - 1


def test_redis_pinned_and_echo_replicated_without_aliases() -> None:
    redis = _stack("redis")["services"]["redis"]
    assert redis["deploy"]["replicas"] == 1
    assert redis["deploy"]["placement"]["constraints"] == ["node.labels.io.provision.redis == true"]
    assert redis["volumes"] == ["redis-data:/data"]
    echo = _stack("echo")
    assert set(echo["services"]) == {"echo-a", "echo-b"}
    assert not any(k.startswith("x-") for k in echo)
    for svc in echo["services"].values():
        assert svc["deploy"]["replicas"] == 1
        assert svc["configs"][0]["target"] == "/usr/local/openresty/nginx/conf/nginx.conf"
    text = stack_file("echo", ["docker-compose.yml", "stack.yml"],
                      parse_read(_read("echo", ["docker-compose.yml", "stack.yml"])))  # fmt: skip
    assert "&" not in text and "*" not in text


def test_merge_maps_merge_lists_replace() -> None:
    assert merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2], "d": 3}}) == {
        "a": {"b": 1, "c": [2], "d": 3}
    }


def test_specs_compared_without_version() -> None:
    one = parse_specs('s {"Name": "s", "Version": {"Index": 1}, "Mode": {}}')
    two = parse_specs('s {"Mode": {}, "Name": "s", "Version": {"Index": 9}}')
    assert one == two and set(one) == {"s"}


def test_gwbridge_address_by_container_id_prefix() -> None:
    from provision.cluster.lookup import parse_gwbridge_ip

    raw = ('{"ingress-sbox": {"IPv4Address": "172.18.0.2/16"}, '
           '"4a617f5d3975aa": {"Name": "gateway_1", "IPv4Address": "172.18.0.3/16"}}')  # fmt: skip
    assert parse_gwbridge_ip(raw, "4a617f5d3975") == "172.18.0.3"
    assert parse_gwbridge_ip(raw, "ffff") == ""
    assert parse_gwbridge_ip("not json", "4a61") == ""


def test_a_compose_file_that_is_not_yaml_is_named_with_its_line() -> None:
    """PyYAML's errors are translated where PyYAML is used (errors.py's promise): the file
    and line on the host, not a yaml.scanner traceback."""
    from provision.errors import ProvisionError
    from provision.tasks.docker_stack import StackRead

    read = StackRead(files={"docker-compose.yml": "services:\n  a: [unclosed\n"}, hashes={},
                     specs={})  # fmt: skip
    with pytest.raises(ProvisionError, match=r"docker-compose.yml:3:1 on the host is not valid"):
        stack_file("redis", ["docker-compose.yml"], read)
