"""Fixtures for the AWS layer against moto: fake credentials, no real network, call recording.

Every test runs with fake credentials, no AWS config files, and a socket guard that refuses any
connection that is not to this machine: nothing here can reach real AWS (or checkip).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from provision.aws import ClusterSpec, Timeouts
from provision.aws import network as aws_network

REGION = "eu-west-1"
DEBIAN_PARAMETER = "/aws/service/debian/release/12/latest/amd64"
AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
UBUNTU_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
)
OPERATOR_IP = "198.51.100.7"
# Short deadlines: moto answers at once, and a failing wait should fail fast.
FAST = Timeouts(running=5, ssh=3, console=0, terminated=5, delete=5, poll=0.01)
CREATE_OPERATIONS = {
    "RunInstances",
    "CreateSecurityGroup",
    "ImportKeyPair",
    "CreateKeyPair",
    "AuthorizeSecurityGroupIngress",
    "CreateTags",
    "CreateVolume",
}


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Fake credentials, no AWS config files, no profile, and no sockets beyond loopback."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # moto's ~1000 default AMIs cost about a second per test; the images used are added below.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

    def no_checkip() -> str:
        raise AssertionError("the default address finder must never run in tests")

    monkeypatch.setattr(aws_network, "checkip_address", no_checkip)
    real_connect = socket.socket.connect

    def local_only(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
                raise AssertionError(f"a test tried to reach {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)
    yield


@dataclass
class Call:
    service: str
    operation: str
    params: dict[str, Any]


@dataclass
class CallLog:
    """Every API call made through a session, recorded by a botocore event hook."""

    calls: list[Call] = field(default_factory=list)

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        self.calls.append(Call(service, model.name, dict(params)))

    def count(self, operation: str) -> int:
        return sum(1 for c in self.calls if c.operation == operation)

    def creates(self) -> list[str]:
        return [c.operation for c in self.calls if c.operation in CREATE_OPERATIONS]

    def operations(self) -> set[tuple[str, str]]:
        return {(c.service, c.operation) for c in self.calls}


# The public images the tests use: (id, owner, name, root device, creation date).
DEBIAN_AMI = "ami-0deb1200000000002"
DEBIAN_OLD_AMI = "ami-0deb1200000000001"
UBUNTU_AMI = "ami-0ab2404000000000a"
AL2023_AMI = "ami-0a12023000000000b"
IMAGES = [
    (DEBIAN_OLD_AMI, "136693071363", "debian-12-amd64-20240101-1000", "/dev/xvda", 2024),
    (DEBIAN_AMI, "136693071363", "debian-12-amd64-20250101-2000", "/dev/xvda", 2025),
    (
        UBUNTU_AMI,
        "099720109477",
        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101",
        "/dev/sda1",
        2025,
    ),
    (
        AL2023_AMI,
        "137112412989",
        "al2023-ami-2023.6.20250101.0-kernel-6.1-x86_64",
        "/dev/xvda",
        2025,
    ),
]


@pytest.fixture
def aws() -> Iterator[None]:
    """moto's in-process AWS with the public images and the SSM parameters that name them."""
    with mock_aws():
        for ami_id, owner, name, root, year in IMAGES:
            add_public_image(ami_id, owner, name, root, year)
        publish_public_parameter(DEBIAN_PARAMETER, DEBIAN_AMI)
        publish_public_parameter(UBUNTU_PARAMETER, UBUNTU_AMI)
        publish_public_parameter(AL2023_PARAMETER, AL2023_AMI)
        yield


def add_public_image(
    ami_id: str, owner: str, name: str, root: str, year: int, architecture: str = "x86_64"
) -> None:
    """Register an image as its publisher would (RegisterImage would make us the owner)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.amis[ami_id] = Ami(
        backend,
        ami_id=ami_id,
        owner_id=owner,
        name=name,
        architecture=architecture,
        root_device_name=root,
        root_device_type="ebs",
        virtualization_type="hvm",
        public=True,
        creation_date=dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc),
    )


def _ssm_parameters(region: str = REGION) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ssm.models import ssm_backends

    parameters = ssm_backends[DEFAULT_ACCOUNT_ID][region]._parameters
    # Keep moto's own (unrelated) Amazon Linux values from being loaded over ours.
    parameters.latest_amis_loaded = True
    return parameters


def unpublish_public_parameter(name: str, region: str = REGION) -> None:
    """As if AWS had no such parameter in this region."""
    _ssm_parameters(region).pop(name, None)


def publish_public_parameter(name: str, value: str, region: str = REGION) -> None:
    """Put a parameter into AWS's read-only ``/aws/service`` namespace, as AWS itself would.

    The API refuses PutParameter there (as AWS does), so this writes to moto's backend.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ssm.models import Parameter

    _ssm_parameters(region)[name].append(
        Parameter(
            account_id=DEFAULT_ACCOUNT_ID,
            name=name,
            value=value,
            parameter_type="String",
            description=None,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=None,
            version=1,
            data_type="aws:ec2:image",
        )
    )


@pytest.fixture
def calls() -> CallLog:
    return CallLog()


_LOADER = botocore.loaders.create_loader()


def new_session() -> boto3.Session:
    """A fresh boto3 session; it shares botocore's parsed API models with the others, since
    parsing the EC2 model again costs ~0.3 s a session and tells a test nothing."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.Session(botocore_session=core, region_name=REGION)


@pytest.fixture
def ec2(aws: None) -> Any:
    """A plain EC2 client to check results with, from its own session."""
    return new_session().client("ec2", REGION)


@pytest.fixture
def session(calls: CallLog) -> boto3.Session:
    """A boto3 session whose clients record every call (made before any client exists)."""
    made = new_session()
    made.events.register("before-parameter-build", calls.hook)
    return made


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def make_spec(cluster: str = "alpha", **extra: Any) -> ClusterSpec:
    return ClusterSpec.from_vars({"cluster": cluster, "region": REGION, **extra})


def operator() -> str:
    return OPERATOR_IP


def quick_up(session: boto3.Session, state_dir: Path, timeouts: Any = None, **spec: Any) -> Any:
    """``provision.aws.up`` of ``make_spec(**spec)`` with no SSH wait and the fast timeouts."""
    from provision.aws import up

    return up(make_spec(**spec), state_dir=state_dir, session=session, wait_ssh=False,
              my_address=operator, timeouts=timeouts or FAST)  # fmt: skip


def fake_response(status: int, xml: str) -> AWSResponse:
    """A raw HTTP answer for a ``before-send`` hook: botocore parses (and retries) it."""

    class Raw:
        def __init__(self, body: bytes) -> None:
            self._body = io.BytesIO(body)

        def stream(self, **_: Any) -> Iterator[bytes]:
            yield self._body.read()

    return AWSResponse("https://ec2.amazonaws.com/", status, {}, Raw(xml.encode()))


def ec2_error(status: int, code: str, message: str = "injected") -> AWSResponse:
    return fake_response(
        status,
        (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            "</Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
        ),
    )


def console_response(instance_id: str, text: str) -> AWSResponse:
    output = base64.b64encode(text.encode()).decode()
    return fake_response(
        200,
        (
            '<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            f"<requestId>1</requestId><instanceId>{instance_id}</instanceId>"
            f"<timestamp>2024-01-01T00:00:00.000Z</timestamp><output>{output}</output>"
            "</GetConsoleOutputResponse>"
        ),
    )


def inject(session: boto3.Session, operation: str, answers: list[AWSResponse | None]) -> list[int]:
    """Answer the next calls of ``operation`` with ``answers`` (None: let moto answer).

    Returns a one-item list counting how many requests the hook saw (retries included).
    """
    seen = [0]

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        seen[0] += 1
        answer = answers.pop(0) if answers else None
        if answer is not None:
            # botocore still runs moto's own before-send handler after this one; an address
            # moto does not serve makes it step aside, so the injected request changes nothing.
            request.url = "https://injected.invalid/"
        return answer

    session.events.register_first(f"before-send.ec2.{operation}", hook)
    session.events.register_first(f"before-send.ssm.{operation}", hook)
    return seen


class BannerServer:
    """A TCP server on 127.0.0.1 that greets like sshd and hangs up: enough for the banner wait."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def banner_server() -> Iterator[BannerServer]:
    server = BannerServer()
    yield server
    server.close()


Endpoint = Callable[[Any], tuple[str, int]]


# ---------------------------------------------------------------- the realism layer


class FakeClock:
    """The realism layer's clock, advanced by the waits of ``provision.aws.waits``: minutes of
    EC2 pass in milliseconds, and ``now`` says how long a run waited."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


@dataclass
class Realism:
    layer: Any
    clock: FakeClock


@pytest.fixture
def realism(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Realism]:
    """moto behaving as real EC2 (``provision.sandbox.realism``, ``REAL`` timings) on a fake
    clock; a test changes ``realism.layer.scenario`` for the situations it needs."""
    import types

    from provision.aws import waits
    from provision.sandbox import realism as layer_module

    clock = FakeClock()
    layer = layer_module.install(layer_module.Layer(layer_module.REAL, clock=clock))
    monkeypatch.setattr(waits, "time", types.SimpleNamespace(monotonic=clock, sleep=clock.sleep))
    try:
        yield Realism(layer, clock)
    finally:
        layer_module.uninstall()
