"""The realism layer: moto's EC2 made to behave as real EC2 is documented to behave.

moto answers at once and ideally: an instance is ``running`` the moment it is launched, a new
ID answers every call, the console is always full. Real EC2 does none of that, and a tool
that has only met moto breaks on its first real run. ``BEHAVIOURS`` is the table of what real
EC2 does, each row with its source in AWS's documentation (or a public bug report) and its
typical timing; ``install`` patches moto's EC2 in this process to behave so, on a clock:

- ``moto_tests`` install it in process with ``REAL`` timings on a fake clock (the waits of
  ``provision.aws.waits`` advance it), so a test sees minutes of EC2 in milliseconds;
- the sandbox's moto server installs it at start with ``SANDBOX`` timings (real seconds,
  scaled down so that a sandbox ``up`` stays quick); ``REALISM_ENV=0`` turns it off.

The situations that are not timings (an account without a default VPC, an instance type a
zone does not offer, a launch that dies) are a ``Scenario``, off unless a test asks.

Example::

    >>> layer = install(Layer(REAL, Scenario(), clock=clock))   # doctest: +SKIP
    >>> ...                                                      # doctest: +SKIP
    >>> uninstall()                                              # doctest: +SKIP
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib
import json
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BEHAVIOURS",
    "EC2_BOOT",
    "HOST_BEHAVIOURS",
    "NONE",
    "REAL",
    "REALISM_ENV",
    "SANDBOX",
    "TIMINGS_ENV",
    "Behaviour",
    "Layer",
    "Scenario",
    "Timings",
    "install",
    "installed",
    "sandbox_on",
    "sandbox_timings",
    "uninstall",
]

#: The sandbox's moto server runs the layer unless this is "0".
REALISM_ENV = "PROVISION_SANDBOX_REALISM"


#: A timing profile for the sandbox instead of ``SANDBOX``: "ec2" (``EC2_BOOT``, EC2's
#: published boot phases) or "ec2:<scale>" (scaled, e.g. "ec2:0.25"): ``bench/cold_start.py``.
TIMINGS_ENV = "PROVISION_SANDBOX_TIMINGS"


def sandbox_on() -> bool:
    """Whether the sandbox runs the layer (its moto server, and its hosts' apt-daily)."""
    return os.environ.get(REALISM_ENV, "1") != "0"


def sandbox_timings() -> Timings:
    """The sandbox's timings: ``SANDBOX``; ``NONE`` with the layer off; the EC2 boot profile
    (scaled) when ``TIMINGS_ENV`` asks for it."""
    if not sandbox_on():
        return NONE
    asked = os.environ.get(TIMINGS_ENV, "")
    if not asked:
        return SANDBOX
    name, _, scale = asked.partition(":")
    if name != "ec2":
        raise ValueError(f"{TIMINGS_ENV}: unknown profile {name!r} (known: ec2, ec2:<scale>)")
    factor = float(scale or 1)
    if not 0 < factor <= 1:
        raise ValueError(f"{TIMINGS_ENV}: the scale must be in (0, 1], not {scale!r}")
    b = EC2_BOOT
    return Timings(pending=b.pending * factor, status_checks=b.status_checks * factor,
                   consistency=b.consistency, console_buffer=b.console_buffer * factor,
                   teardown=b.teardown, burst=0, window=b.window,
                   apt_lists=b.apt_lists * factor)  # fmt: skip


@dataclass(frozen=True)
class Behaviour:
    """One row of the table: what real EC2 does, where that is written, how long it takes."""

    key: str
    what: str
    source: str
    timing: str = ""


BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour("pending", "an instance is `pending` before it is `running`",
              "EC2 User Guide, instance lifecycle; ec2-boot-bench", "pending -> running ~18 s"),
    Behaviour("status_checks", "status checks pass minutes after `running`; SSH works before",
              "EC2 User Guide, status checks; Terraform/Ansible ec2_instance do not wait",
              "2-4 min after launch"),
    Behaviour("consistency", "a new instance, security group or key pair answers `NotFound` "
              "to other calls for a while, `RunInstances` included",
              "EC2 API reference, eventual consistency; hashicorp/packer#1322", "seconds"),
    Behaviour("console", "`GetConsoleOutput` without `Latest=True` is buffered: empty (no "
              "`Output` at all) until well after boot", "GetConsoleOutput API reference; "
              "canonical/pycloudlib#193; coreos/coreos-assembler#1580", "~5 min"),
    Behaviour("throttling", "`RequestLimitExceeded` under a burst of calls",
              "EC2 API reference, request throttling", "per account, token bucket"),
    Behaviour("unsupported_zone", "an instance type is not offered in every zone: "
              "`Unsupported` from `RunInstances`", "RunInstances errors; "
              "DescribeInstanceTypeOfferings"),
    Behaviour("no_default_vpc", "an account or region may have no default VPC: "
              "`VPCIdNotSpecified` unless a subnet (VPC) is named", "Amazon VPC User Guide, "
              "default VPCs; RunInstances reference"),
    Behaviour("public_ip", "an instance gets a public IPv4 only when its subnet maps one or "
              "the launch asks (`AssociatePublicIpAddress`)", "Amazon VPC User Guide, IP "
              "addressing"),
    Behaviour("dies_at_launch", "an instance can go `pending` -> `terminated` with a "
              "`StateReason` (a KMS key it may not use, capacity)",
              "DescribeInstances `StateReason`; EBS encryption docs", "seconds"),
    Behaviour("client_token", "the same ClientToken returns the first reservation; other "
              "parameters under it answer `IdempotentParameterMismatch`",
              "EC2 API reference, ensuring idempotency"),
    Behaviour("shutdown", "an instance whose OS powers off (provision's ttl schedule) is "
              "terminated, `InstanceInitiatedShutdownBehavior=terminate`, with the "
              "`StateReason` `Client.InstanceInitiatedShutdown`", "EC2 User Guide, change "
              "the instance initiated shutdown behavior; StateReason codes"),
    Behaviour("teardown", "a security group answers `DependencyViolation` until its "
              "instances' network interfaces are gone, a while after `terminated`",
              "EC2 User Guide, delete a security group", "seconds to a minute"),
)  # fmt: skip

#: What the sandbox's EC2-like hosts do at boot as instances do (tested in ``tests/``, on a
#: host: ``pytest tests -k realism``), beside the EC2 API's rows above.
HOST_BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour("apt_lists", "apt-daily's first `apt-get update` holds `/var/lib/apt/lists/lock` "
              "after boot; another `apt-get update` fails at once (\"Could not get lock\")",
              "canonical/cloud-init#2908 (LP #1693361); geerlingguy/ansible-role-docker#159; "
              "cfengine/buildscripts#2482 (EC2)", "tens of seconds to minutes after boot"),
)  # fmt: skip


@dataclass(frozen=True)
class Timings:
    """Seconds on the layer's clock."""

    pending: float  # RunInstances -> running
    status_checks: float  # running -> both status checks ok
    consistency: float  # a new ID answers NotFound to other calls
    console_buffer: float  # launch -> buffered console output shows anything
    teardown: float  # terminated -> its security group may be deleted
    burst: int  # calls within `window` before one answers RequestLimitExceeded (0: never)
    window: float
    apt_lists: float = 0  # boot -> apt-daily releases the apt lists lock (the sandbox hosts)


#: Typical timings of real EC2 (``BEHAVIOURS``), for the fake clock of moto_tests.
REAL = Timings(pending=18, status_checks=180, consistency=3, console_buffer=300, teardown=30,
               burst=40, window=1.0, apt_lists=90)  # fmt: skip
#: Scaled down for the sandbox (real seconds): the same phases, a quick ``up``.
SANDBOX = Timings(pending=1.5, status_checks=20, consistency=0.5, console_buffer=20,
                  teardown=1.0, burst=0, window=1.0, apt_lists=8)  # fmt: skip
#: EC2's published boot phases (brevdev's ec2-coldboot study, m7i.large: pending -> running
#: ~18 s; AWS: status checks pass 2-4 min after launch), for ``bench/cold_start.py``: the
#: sandbox under them shows what a boot of two seconds hides. Teardown and consistency stay
#: short: the bench times ``up``, not ``down``.
EC2_BOOT = Timings(pending=18, status_checks=150, consistency=0.5, console_buffer=300,
                   teardown=1.0, burst=0, window=1.0, apt_lists=30)  # fmt: skip
#: The layer turned off: moto's own timings (everything at once), only the scenario's hooks.
NONE = Timings(pending=0, status_checks=0, consistency=0, console_buffer=0, teardown=0,
               burst=0, window=1.0)  # fmt: skip


@dataclass
class Scenario:
    """Situations a test asks for (all off by default)."""

    no_default_vpc: bool = False
    #: instance type -> the zones that do not offer it
    unsupported: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: (code, message): every launched instance dies at launch with this StateReason
    dies_at_launch: tuple[str, str] | None = None
    #: instance id -> what its console shows now (default: moto's canned text)
    console: Callable[[str], str] | None = None
    #: the ids of the instances whose OS has powered off (asked at most every
    #: ``POWER_POLL`` seconds: it may be slow): each then goes as its shutdown behaviour says
    powered_off: Callable[[], set[str]] | None = None


#: How often (layer clock seconds) the scenario's ``powered_off`` is asked.
POWER_POLL = 2.0


class RealismError(Exception):
    """An EC2 error answer (the layer raises moto's own error class; this names it here)."""


class Layer:
    """The state of the layer: when each thing was made, what it did (``seen``)."""

    def __init__(self, timings: Timings, scenario: Scenario | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 journal: Path | None = None) -> None:  # fmt: skip
        self.timings = timings
        self.scenario = scenario or Scenario()
        self.clock = clock
        self.born: dict[str, float] = {}  # instance ids, group ids, key names
        self.launched: dict[str, float] = {}
        self.terminated: dict[str, float] = {}
        self.tokens: dict[str, tuple[str, Any]] = {}
        self.calls: deque[float] = deque()
        self.seen: Counter[str] = Counter()  # what the layer did, by behaviour key
        #: True while moto replays a recording (the sandbox server's restart): each call of
        #: the past gets the answer it got then (``journal``), not a new one.
        self.paused = False
        #: Where the layer's refusals are written (beside moto's recording): a replay refuses
        #: the same requests, so that the cloud comes back with the same IDs.
        self.journal = journal
        self.refusals: dict[str, tuple[str, str]] = {}
        self.occurrences: Counter[str] = Counter()
        self._powered_off: set[str] = set()
        self._power_asked = -POWER_POLL
        if journal is not None and journal.exists():
            for line in journal.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                self.refusals[entry["key"]] = (entry["code"], entry["message"])

    def request_key(self, body: object) -> str:
        """The request's body digest and how many times that body came before."""
        raw = body if isinstance(body, bytes) else str(body or "").encode()
        digest = hashlib.sha256(raw).hexdigest()[:32]
        key = f"{digest}:{self.occurrences[digest]}"
        self.occurrences[digest] += 1
        return key

    def refused(self, key: str, code: str, message: str) -> None:
        if self.journal is not None:
            entry = {"key": key, "code": code, "message": message}
            with self.journal.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")

    # ------------------------------------------------------------------ rules

    def throttle(self) -> None:
        t = self.timings
        if not t.burst:
            return
        now = self.clock()
        while self.calls and self.calls[0] <= now - t.window:
            self.calls.popleft()
        self.calls.append(now)
        if len(self.calls) > t.burst:
            self.calls.clear()  # one throttled answer per burst: a retry gets through
            self.seen["throttling"] += 1
            _raise("RequestLimitExceeded", "Request limit exceeded.")

    def too_new(self, names: list[str]) -> None:
        now = self.clock()
        for name in names:
            born = self.born.get(name)
            if born is not None and now - born < self.timings.consistency:
                self.seen["consistency"] += 1
                code = ("InvalidInstanceID.NotFound" if name.startswith("i-") else
                        "InvalidGroup.NotFound" if name.startswith("sg-") else
                        "InvalidKeyPair.NotFound")  # fmt: skip
                _raise(code, f"The ID or name '{name}' does not exist")

    def state_of(self, instance: Any) -> None:
        """Move a launched instance along pending -> running (or -> terminated)."""
        launched = self.launched.get(instance.id)
        if launched is None or instance.id in self.terminated:
            return
        age = self.clock() - launched
        dies = self.scenario.dies_at_launch
        if age < self.timings.pending:
            instance._state.name, instance._state.code = "pending", 0
            self.seen["pending"] += 1
        elif dies is not None:
            instance._state.name, instance._state.code = "terminated", 48
            instance._reason = "Server.InternalError"
            instance.state_reason = _state_reason(*dies)
            self.terminated[instance.id] = self.clock()
            self.seen["dies_at_launch"] += 1
        elif instance._state.name == "pending":
            instance._state.name, instance._state.code = "running", 16
        elif instance._state.name == "running" and instance.id in self.powered_off():
            self.shut_down(instance)

    def powered_off(self) -> set[str]:
        ask = self.scenario.powered_off
        if ask is not None and self.clock() - self._power_asked >= POWER_POLL:
            self._power_asked = self.clock()
            self._powered_off = ask()
        return self._powered_off

    def shut_down(self, instance: Any) -> None:
        """The instance's OS powered off: terminated or stopped, as it was launched to."""
        if instance.instance_initiated_shutdown_behavior == "terminate":
            instance._state.name, instance._state.code = "terminated", 48
            self.terminated[instance.id] = self.clock()
        else:
            instance._state.name, instance._state.code = "stopped", 80
        instance._reason = "User initiated"
        instance.state_reason = _state_reason(
            "Client.InstanceInitiatedShutdown",
            "Client.InstanceInitiatedShutdown: Instance initiated shutdown",
        )
        self.seen["shutdown"] += 1

    def status_ok(self, instance: Any) -> bool:
        launched = self.launched.get(instance.id)
        if launched is None:
            return True
        ok = self.clock() - launched >= self.timings.pending + self.timings.status_checks
        if not ok:
            self.seen["status_checks"] += 1
        return ok


_layer: Layer | None = None
_undo: list[Callable[[], None]] = []


def installed() -> Layer | None:
    return _layer


def install(layer: Layer) -> Layer:
    """Patch moto's EC2 (in this process) to follow ``layer``; ``uninstall`` undoes it."""
    global _layer
    uninstall()
    _layer = layer
    responses: Any = importlib.import_module("moto.ec2.responses")
    models: Any = importlib.import_module("moto.ec2.models.instances")
    cls = responses.EC2Response
    for name, hook in _HOOKS.items():
        original = getattr(cls, name)
        setattr(cls, name, _wrapped(original, hook))
        _undo.append(functools.partial(setattr, cls, name, original))
    recorder: Any = importlib.import_module("moto.moto_api._internal.recorder.models")
    replay = recorder.Recorder.replay_recording
    recorder.Recorder.replay_recording = _paused_during(replay)
    _undo.append(functools.partial(setattr, recorder.Recorder, "replay_recording", replay))
    for prop in ("instance_status", "system_status"):
        original = getattr(models.Instance, prop)
        setattr(models.Instance, prop, property(_status(original)))
        _undo.append(functools.partial(setattr, models.Instance, prop, original))
    return layer


def uninstall() -> None:
    global _layer
    while _undo:
        _undo.pop()()
    _layer = None


# ---------------------------------------------------------------------- moto's side


def _paused_during(replay: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(replay)
    def paused(*args: Any, **kwargs: Any) -> None:
        layer = _layer
        if layer is not None:
            layer.paused = True
        try:
            replay(*args, **kwargs)
        finally:
            if layer is not None:
                layer.paused = False

    return paused


def _raise(code: str, message: str) -> None:
    exceptions: Any = importlib.import_module("moto.ec2.exceptions")
    error = exceptions.EC2ClientError(code, message)
    error.realism = True  # the layer's own refusal, not moto's
    raise error


def _state_reason(code: str, message: str) -> Any:
    models: Any = importlib.import_module("moto.ec2.models.instances")
    return models.StateReason(message, code)


def _status(original: Any) -> Callable[[Any], Any]:
    def status(instance: Any) -> Any:
        layer = _layer
        answer = original.fget(instance)
        if (layer is not None and not layer.paused and answer.get("Status") == "ok"
                and not layer.status_ok(instance)):  # fmt: skip
            return {"Status": "initializing",
                    "Details": [{"Name": "reachability", "Status": "initializing"}]}  # fmt: skip
        return answer

    return status


Hook = Callable[[Layer, Any, Callable[[], Any]], Any]


def _wrapped(original: Callable[[Any], Any], hook: Hook) -> Callable[[Any], Any]:
    @functools.wraps(original)
    def method(self: Any) -> Any:
        layer = _layer
        if layer is None:
            return original(self)
        key = layer.request_key(self.body)
        if layer.paused:  # a replay: the same refusals, and ClientToken idempotency
            if key in layer.refusals:
                _raise(*layer.refusals[key])
            if hook is _run_instances:
                return _replayed_run(layer, self, original)
            return original(self)
        try:
            layer.throttle()
            for instance in self.ec2_backend.all_instances():
                layer.state_of(instance)
            return hook(layer, self, lambda: original(self))
        except Exception as exc:
            if getattr(exc, "realism", False):
                layer.refused(key, str(getattr(exc, "code", "")), str(getattr(exc, "message", "")))
            raise

    return method


def _ids(response: Any, *params: str) -> list[str]:
    found: list[str] = []
    for param in params:
        value = response._get_param(param)
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found += [v for v in value if isinstance(v, str)]
    return found


def _names_instances(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    layer.too_new(_ids(response, "InstanceIds", "InstanceId", "Resources"))
    return call()


def _names_group(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    layer.too_new(_ids(response, "GroupId", "GroupIds"))
    return call()


def _names_key(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    layer.too_new(_ids(response, "KeyName", "KeyNames"))
    return call()


def _no_default_vpc(layer: Layer, response: Any) -> None:
    if not layer.scenario.no_default_vpc:
        return
    for vpc in response.ec2_backend.vpcs.values():
        vpc.is_default = False
    for subnet in response.ec2_backend.describe_subnets():
        subnet.default_for_az = False


def _describe_vpcs(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    _no_default_vpc(layer, response)
    return call()


def _describe_subnets(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    _no_default_vpc(layer, response)
    return call()


def _create_security_group(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    _no_default_vpc(layer, response)
    if layer.scenario.no_default_vpc and not response._get_param("VpcId"):
        layer.seen["no_default_vpc"] += 1
        _raise("VPCIdNotSpecified", "No default VPC for this user")
    before = {g for groups in response.ec2_backend.groups.values() for g in groups}
    result = call()
    for groups in response.ec2_backend.groups.values():
        for group_id in set(groups) - before:
            layer.born.setdefault(group_id, layer.clock())
    return result


def _new_key(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    result = call()
    layer.born.setdefault(response._get_param("KeyName"), layer.clock())
    return result


def _params_digest(response: Any) -> str:
    query = {k: v for k, v in sorted(response.querystring.items())
             if k not in ("ClientToken", "Action", "Version")}  # fmt: skip
    return hashlib.sha256(repr(query).encode()).hexdigest()


def _subnet_zone(response: Any) -> str | None:
    subnet_id = response._get_param("SubnetId")
    for nic in response._get_param("NetworkInterfaces", []) or []:
        subnet_id = subnet_id or (nic.get("SubnetId") if isinstance(nic, dict) else None)
    if not subnet_id:
        return None
    return str(response.ec2_backend.get_subnet(subnet_id).availability_zone)


def _first_reservation(layer: Layer, token: str | None) -> tuple[str, Any] | None:
    """The first RunInstances under ``token``: its parameters' digest and its answer (the
    reservation, as moto's response gives it back), or None."""
    if not token or token not in layer.tokens:
        return None
    digest, reservation = layer.tokens[token]
    responses: Any = importlib.import_module("moto.core.responses")
    return digest, responses.ActionResult(reservation)


def _replayed_run(layer: Layer, response: Any, original: Callable[[Any], Any]) -> Any:
    """RunInstances replayed from a recording: attempts the layer refused were recorded too,
    and a repeat under one ClientToken must return the first reservation, as it did."""
    token = response._get_param("ClientToken")
    first = _first_reservation(layer, token)
    if first is not None:
        return first[1]
    result = original(response)
    if token:
        layer.tokens[token] = (_params_digest(response), result.result)
    return result


def _run_instances(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    _no_default_vpc(layer, response)
    layer.too_new(_ids(response, "SecurityGroupIds", "KeyName"))
    token = response._get_param("ClientToken")
    digest = _params_digest(response)
    first = _first_reservation(layer, token)
    if first is not None:
        layer.seen["client_token"] += 1
        if first[0] != digest:
            _raise("IdempotentParameterMismatch", "Arguments on this idempotent request are "
                   "inconsistent with arguments used in previous request(s).")  # fmt: skip
        return first[1]
    zone = _subnet_zone(response)
    if layer.scenario.no_default_vpc and zone is None:
        layer.seen["no_default_vpc"] += 1
        _raise("VPCIdNotSpecified", "No default VPC for this user")
    instance_type = response._get_param("InstanceType") or "m1.small"
    lacking = layer.scenario.unsupported.get(instance_type, ())
    where = zone or response._get_param("Placement.AvailabilityZone") or f"{response.region}a"
    if where in lacking:
        layer.seen["unsupported_zone"] += 1
        _raise("Unsupported", f"Your requested instance type ({instance_type}) is not "
               f"supported in your requested Availability Zone ({where}).")  # fmt: skip
    result = call()
    reservation = result.result
    if token:
        layer.tokens[token] = (digest, reservation)
    now = layer.clock()
    for instance in reservation.instances:
        layer.born[instance.id] = now
        layer.launched[instance.id] = now
        layer.state_of(instance)
        if instance.public_ip:
            layer.seen["public_ip"] += 1
    return result


def _terminate_instances(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    layer.too_new(_ids(response, "InstanceIds"))
    result = call()
    now = layer.clock()
    for instance_id in _ids(response, "InstanceIds"):
        layer.terminated.setdefault(instance_id, now)
    return result


def _delete_security_group(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    group_id = response._get_param("GroupId")
    layer.too_new([group_id] if group_id else [])
    now = layer.clock()
    for instance in response.ec2_backend.all_instances():
        uses = any(g.id == group_id for g in instance.security_groups)
        gone = layer.terminated.get(instance.id)
        if (
            uses
            and instance.id in layer.launched
            and (gone is None or now - gone < layer.timings.teardown)
        ):
            layer.seen["teardown"] += 1
            _raise("DependencyViolation", f"resource {group_id} has a dependent object")
    return call()


def _console_output(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    instance_id = response._get_param("InstanceId")
    layer.too_new([instance_id])
    latest = str(response._get_param("Latest") or "").lower() == "true"
    launched = layer.launched.get(instance_id)
    responses: Any = importlib.import_module("moto.core.responses")
    if (
        launched is not None
        and not latest
        and (layer.clock() - launched < layer.timings.console_buffer)
    ):
        layer.seen["console"] += 1
        return responses.ActionResult({"InstanceId": instance_id, "Timestamp": _utcnow()})
    if layer.scenario.console is None:
        return call()
    text = layer.scenario.console(instance_id)
    encoded = base64.b64encode(text.encode()).decode()
    return responses.ActionResult(
        {"InstanceId": instance_id, "Timestamp": _utcnow(), "Output": encoded}
    )


def _utcnow() -> Any:
    utils: Any = importlib.import_module("moto.core.utils")
    return utils.utcnow()


def _offerings(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    result = call()
    lacking = layer.scenario.unsupported
    offers = result.result["InstanceTypeOfferings"]
    result.result["InstanceTypeOfferings"] = [
        o for o in offers if o["Location"] not in lacking.get(o["InstanceType"], ())
    ]
    return result


def _plain(layer: Layer, response: Any, call: Callable[[], Any]) -> Any:
    return call()


_HOOKS: dict[str, Hook] = {
    "run_instances": _run_instances,
    "describe_instances": _names_instances,
    "describe_instance_status": _names_instances,
    "create_tags": _names_instances,
    "terminate_instances": _terminate_instances,
    "get_console_output": _console_output,
    "describe_security_groups": _names_group,
    "authorize_security_group_ingress": _names_group,
    "create_security_group": _create_security_group,
    "delete_security_group": _delete_security_group,
    "import_key_pair": _new_key,
    "create_key_pair": _new_key,
    "describe_key_pairs": _names_key,
    "describe_vpcs": _describe_vpcs,
    "describe_subnets": _describe_subnets,
    "describe_instance_types": _plain,
    "describe_instance_type_offerings": _offerings,
    "describe_images": _plain,
}
