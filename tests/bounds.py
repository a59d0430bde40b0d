"""Every bound the tests wait on, in one place, with why it is that long.

A test never sleeps a fixed time and hopes: it waits on a condition, at most one of these.
They are sized for a loaded 2-core machine (CI runs the suite while other work shares it),
at several times what an idle machine needs; a bound is a failure's deadline, not a delay.
"""

from __future__ import annotations

#: One ``provision`` CLI run that brings a sandbox cluster up or down: a cold ``up`` on a
#: bare host (apt install of Docker, ~60 s idle) plus image transfer (~20 s) and verify,
#: with headroom for a loaded machine and a swarm of three.
CLI_RUN = 900.0
#: A sandbox host container booting systemd until sshd sends its banner (~2 s idle).
SSH_BANNER = 90.0
#: A route written to Redis reaching every router (the routers refresh each second).
ROUTE_PROPAGATION = 30.0
#: A command the test started over SSH showing up in the host's process list (~1 s idle:
#: Python start, SSH handshake, the run's first reads).
STEP_STARTS = 60.0
#: A restarted host's services answering again (systemd, dockerd, the containers by their
#: restart policy: ~5 s idle).
SERVICE_BACK = 60.0
#: A sandbox host's own Docker engine answering after sshd does (systemd starts both; ~1 s
#: idle).
ENGINE_ANSWERS = 60.0
#: A Redis Cluster node learning of a failover from its peers (cluster bus gossip: ~1 s idle).
CLUSTER_CONVERGES = 30.0
#: A host launched with test_sandbox_ttl's 50 s ttl powering itself off, from before its
#: launch: the schedule runs at boot and sets a timer to the second for the time left (never
#: early), so the power-off comes about 50 s after the launch; a minute's margin for load.
TTL_POWER_OFF = 110.0
