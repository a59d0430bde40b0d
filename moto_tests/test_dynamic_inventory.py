"""The dynamic inventory (``plugin: provision.aws_ec2``): a cluster's running instances are
found by their tags and land in the inventory's group, with their connection variables."""

from __future__ import annotations

import pytest

from moto_tests.test_up import stand_up
from provision.api import resolve_sources
from provision.load.inventory import load_inventory

pytestmark = pytest.mark.usefixtures("aws")


def test_plugin_inventory_finds_the_cluster_by_tags(session, state_dir, tmp_path):
    result = stand_up(session, state_dir, cluster="dyn")
    stand_up(session, state_dir, cluster="other")  # must not leak into "dyn"'s group
    source = tmp_path / "dyn.yml"
    source.write_text(
        "plugin: provision.aws_ec2\ncluster: dyn\nregion: eu-west-1\n"
        "vars: {cloud: aws, network: shared-network}\n"
    )
    inventory = resolve_sources(load_inventory(source), state_dir)
    hosts = inventory.select("cluster")
    assert [h.name for h in hosts] == [i.name for i in result.instances]
    host = hosts[0]
    assert host.vars["instance_id"] == result.instances[0].instance_id
    assert host.vars["ansible_host"] == result.instances[0].public_ip
    assert host.vars["ansible_user"] == "admin"
    assert host.vars["network"] == "shared-network"
    assert host.vars["ansible_ssh_private_key_file"].endswith("dyn/id_ed25519")
