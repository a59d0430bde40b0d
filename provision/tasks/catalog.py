"""Every module a playbook may name. Ansible's names where the meaning is Ansible's."""

from __future__ import annotations

from collections.abc import Mapping

from provision.tasks import (
    checks,
    command,
    compose,
    copy,
    docker_engine,
    docker_images,
    docker_network,
    docker_node,
    docker_stack,
    docker_swarm,
    ec2,
    include,
    meta,
    redis_cluster,
    routes,
    secret,
    set_fact,
    shell,
    template,
    verify,
)
from provision.tasks.base import ModuleSpec

MODULES: Mapping[str, ModuleSpec] = {
    spec.name: spec
    for spec in (
        checks.ASSERT_SPEC,
        checks.DEBUG_SPEC,
        checks.FAIL_SPEC,
        command.SPEC,
        compose.SPEC,
        copy.SPEC,
        docker_engine.SPEC,
        docker_images.SPEC,
        docker_network.SPEC,
        docker_node.SPEC,
        docker_stack.SPEC,
        docker_swarm.SPEC,
        ec2.CLUSTER_SPEC,
        ec2.HOSTS_SPEC,
        ec2.TEARDOWN_SPEC,
        include.SPEC,
        meta.SPEC,
        redis_cluster.SPEC,
        routes.SPEC,
        secret.SPEC,
        set_fact.SPEC,
        shell.SPEC,
        template.SPEC,
        verify.SPEC,
    )
}
